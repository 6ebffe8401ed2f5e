//! Docker's reference grammar: normalisation, familiar forms and errors.

use kiln_image::{Reference, ReferenceError};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// (input, full normalised form, familiar name, registry, tag)
fn valid_cases() -> Vec<(
    String,
    String,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    vec![
        (
            "busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox",
            "docker.io",
            Some("latest"),
        ),
        (
            "busybox:1.36".into(),
            "docker.io/library/busybox:1.36".into(),
            "busybox",
            "docker.io",
            Some("1.36"),
        ),
        (
            "user/app".into(),
            "docker.io/user/app:latest".into(),
            "user/app",
            "docker.io",
            Some("latest"),
        ),
        (
            "lab/busybox:v1".into(),
            "docker.io/lab/busybox:v1".into(),
            "lab/busybox",
            "docker.io",
            Some("v1"),
        ),
        (
            "docker.io/library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox",
            "docker.io",
            Some("latest"),
        ),
        (
            "docker.io/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox",
            "docker.io",
            Some("latest"),
        ),
        (
            "index.docker.io/library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox",
            "docker.io",
            Some("latest"),
        ),
        (
            "docker.io/library/a/b".into(),
            "docker.io/library/a/b:latest".into(),
            "library/a/b",
            "docker.io",
            Some("latest"),
        ),
        (
            "a/b/c/d".into(),
            "docker.io/a/b/c/d:latest".into(),
            "a/b/c/d",
            "docker.io",
            Some("latest"),
        ),
        (
            "localhost/foo".into(),
            "localhost/foo:latest".into(),
            "localhost/foo",
            "localhost",
            Some("latest"),
        ),
        (
            "localhost:5000/a/b:t".into(),
            "localhost:5000/a/b:t".into(),
            "localhost:5000/a/b",
            "localhost:5000",
            Some("t"),
        ),
        (
            "host.tld/x".into(),
            "host.tld/x:latest".into(),
            "host.tld/x",
            "host.tld",
            Some("latest"),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            "sub-dom1.foo.com/bar/baz/quux",
            "sub-dom1.foo.com",
            Some("some-long-tag"),
        ),
        (
            "[::1]:5000/foo".into(),
            "[::1]:5000/foo:latest".into(),
            "[::1]:5000/foo",
            "[::1]:5000",
            Some("latest"),
        ),
        (
            "foo:5000".into(),
            "docker.io/library/foo:5000".into(),
            "foo",
            "docker.io",
            Some("5000"),
        ),
        (
            "Foo/bar".into(),
            "Foo/bar:latest".into(),
            "Foo/bar",
            "Foo",
            Some("latest"),
        ),
        (
            "a.b-c/d__e_f/g--h.i:V_1.0-rc".into(),
            "a.b-c/d__e_f/g--h.i:V_1.0-rc".into(),
            "a.b-c/d__e_f/g--h.i",
            "a.b-c",
            Some("V_1.0-rc"),
        ),
        (
            "fo-o__b_a/x--y".into(),
            "docker.io/fo-o__b_a/x--y:latest".into(),
            "fo-o__b_a/x--y",
            "docker.io",
            Some("latest"),
        ),
        (
            format!("busybox@sha256:{HEX}"),
            format!("docker.io/library/busybox@sha256:{HEX}"),
            "busybox",
            "docker.io",
            None,
        ),
        (
            format!("busybox:1.0@sha256:{HEX}"),
            format!("docker.io/library/busybox:1.0@sha256:{HEX}"),
            "busybox",
            "docker.io",
            Some("1.0"),
        ),
        (
            format!("localhost:5000/a@sha256:{HEX}"),
            format!("localhost:5000/a@sha256:{HEX}"),
            "localhost:5000/a",
            "localhost:5000",
            None,
        ),
        (
            format!("x:{}", "t".repeat(128)),
            format!("docker.io/library/x:{}", "t".repeat(128)),
            "x",
            "docker.io",
            Some(""),
        ),
    ]
}

#[test]
fn valid_references_normalise_like_docker() {
    for (input, full, familiar, registry, tag) in valid_cases() {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), full, "display of {input}");
        assert_eq!(r.familiar(), familiar, "familiar of {input}");
        assert_eq!(r.registry(), registry, "registry of {input}");
        if tag != Some("") {
            assert_eq!(r.tag(), tag, "tag of {input}");
        }
        let again = Reference::parse(&full).expect("normalised form parses");
        assert_eq!(again, r, "normalised form of {input} is a fixed point");
    }
}

#[test]
fn digest_and_repository_accessors() {
    let r = Reference::parse(&format!("lab/app:v2@sha256:{HEX}")).unwrap();
    assert_eq!(r.repository(), "docker.io/lab/app");
    assert_eq!(r.path(), "lab/app");
    assert_eq!(r.tag(), Some("v2"));
    assert_eq!(
        r.digest().map(|d| d.digest().to_string()),
        Some(HEX.to_string())
    );
    assert_eq!(r.familiar_string(), format!("lab/app:v2@sha256:{HEX}"));
}

#[test]
fn parse_named_keeps_bare_names_untagged() {
    let r = Reference::parse_named("busybox").unwrap();
    assert_eq!(r.tag(), None);
    assert_eq!(r.to_string(), "docker.io/library/busybox");
}

#[test]
fn invalid_references_fail_with_docker_wording() {
    use ReferenceError::*;
    let long_name = format!("{}/x", "a".repeat(255));
    let cases: Vec<(String, ReferenceError)> = vec![
        ("".into(), InvalidFormat),
        ("Busybox".into(), Uppercase),
        ("docker.io/Library/busybox".into(), Uppercase),
        ("localhost:5000/Foo".into(), Uppercase),
        ("busybox:".into(), InvalidFormat),
        ("busybox:-tag".into(), InvalidFormat),
        (":tag".into(), InvalidFormat),
        ("a//b".into(), InvalidFormat),
        ("a/".into(), InvalidFormat),
        ("-busybox".into(), InvalidFormat),
        ("busybox_".into(), InvalidFormat),
        ("bu___sybox".into(), InvalidFormat),
        ("bu sybox".into(), InvalidFormat),
        ("-host.com/foo".into(), InvalidFormat),
        ("under_score.com/foo".into(), InvalidFormat),
        ("fo-o__b.a_r/x".into(), InvalidFormat),
        ("registry.com:abc/foo".into(), InvalidFormat),
        ("host:1:2/foo".into(), InvalidFormat),
        ("busybox@".into(), InvalidFormat),
        ("busybox@sha256:abc".into(), InvalidFormat),
        (format!("x:{}", "t".repeat(129)), InvalidFormat),
        (
            format!("busybox@sha256:{}", &HEX[..63]),
            InvalidDigest(String::new()),
        ),
        (HEX.into(), HexIdentifier(HEX.into())),
        (long_name, NameTooLong),
    ];
    for (input, want) in cases {
        let got = Reference::parse(&input).expect_err(&input);
        match (&got, &want) {
            (InvalidDigest(_), InvalidDigest(_)) => {}
            _ => assert_eq!(got, want, "error for {input:?}"),
        }
    }
}

#[test]
fn error_messages_match_docker() {
    assert_eq!(
        Reference::parse("a//b").unwrap_err().to_string(),
        "invalid reference format"
    );
    assert_eq!(
        Reference::parse("Busybox").unwrap_err().to_string(),
        "invalid reference format: repository name must be lowercase"
    );
}

#[test]
fn with_tag_and_with_digest() {
    let r = Reference::parse("busybox:1").unwrap();
    assert_eq!(
        r.with_tag("2").unwrap().to_string(),
        "docker.io/library/busybox:2"
    );
    assert!(r.with_tag("-bad").is_err());
    let d = format!("sha256:{HEX}").parse().unwrap();
    assert_eq!(
        r.with_digest(d).to_string(),
        format!("docker.io/library/busybox@sha256:{HEX}")
    );
}

#[test]
fn familiar_match_follows_docker_reference_filter() {
    let cases = [
        ("busybox", "busybox", true),
        ("busybox", "busybox:latest", true),
        ("busybox:1.36", "busybox:*", true),
        ("busybox:1.36", "busybox:latest", false),
        ("busybox", "bus*", true),
        ("lab/busybox", "lab/*", true),
        ("lab/busybox", "*", false),
        ("lab/busybox", "*/*", true),
        ("localhost:5000/a", "localhost:5000/*", true),
        ("alpine", "busy*", false),
    ];
    for (reference, pattern, want) in cases {
        let r = Reference::parse(reference).unwrap();
        assert_eq!(
            r.familiar_match(pattern).unwrap(),
            want,
            "{pattern} vs {reference}"
        );
    }
    assert_eq!(
        Reference::parse("busybox")
            .unwrap()
            .familiar_match("[")
            .unwrap_err(),
        ReferenceError::BadPattern
    );
}
