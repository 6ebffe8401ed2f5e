//! Each check: a Dockerfile that fires it (rule, message, line and column) and a close one
//! that does not. Cases follow BuildKit's own lint tests where it has them.

use std::collections::BTreeMap;

use kiln_dockerfile::lint::{LintOptions, lint};

/// `(message, line, col)` of every finding of `rule`.
fn hits_with(source: &str, opts: &LintOptions, rule: &str) -> Vec<(String, usize, usize)> {
    let report = lint(source, opts).unwrap_or_else(|e| panic!("lint failed: {e}"));
    report
        .findings
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.message, f.line, f.col))
        .collect()
}

fn hits(source: &str, rule: &str) -> Vec<(String, usize, usize)> {
    hits_with(source, &LintOptions::default(), rule)
}

fn fires(source: &str, rule: &str, message: &str, line: usize) {
    assert_eq!(
        hits(source, rule),
        [(message.to_owned(), line, 1)],
        "{source}"
    );
}

fn silent(source: &str, rule: &str) {
    assert_eq!(hits(source, rule), [], "{source}");
}

#[test]
fn stage_name_casing() {
    fires(
        "\nFROM scratch AS BadStageName\n",
        "StageNameCasing",
        "Stage name 'BadStageName' should be lowercase",
        2,
    );
    silent("FROM scratch AS good-name\n", "StageNameCasing");
}

#[test]
fn from_as_casing() {
    fires(
        "FROM scratch as base2\n",
        "FromAsCasing",
        "'as' and 'FROM' keywords' casing do not match",
        1,
    );
    fires(
        "from scratch AS base\n",
        "FromAsCasing",
        "'AS' and 'from' keywords' casing do not match",
        1,
    );
    silent(
        "from scratch as base\nFROM scratch AS b2\nFrom scratch as b3\n",
        "FromAsCasing",
    );
}

#[test]
fn no_empty_continuation() {
    let src = "\nFROM scratch\n# comment\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n";
    fires(src, "NoEmptyContinuation", "Empty continuation line", 6);
    silent(
        "FROM scratch\nCOPY Dockerfile \\\n.\n",
        "NoEmptyContinuation",
    );
}

#[test]
fn consistent_instruction_casing() {
    let rule = "ConsistentInstructionCasing";
    fires(
        "From scratch as base\nFROM scratch AS base2\n",
        rule,
        "Command 'From' should match the case of the command majority (uppercase)",
        1,
    );
    fires(
        "FROM scratch\ncopy a /foo\nCOPY a /bar\n",
        rule,
        "Command 'copy' should match the case of the command majority (uppercase)",
        2,
    );
    fires(
        "FROM scratch\ncopy a /f\ncopy a /b\ncopy a /z\n",
        rule,
        "Command 'FROM' should match the case of the command majority (lowercase)",
        1,
    );
    silent("from scratch\ncopy a /foo\n", rule);
    silent("FROM scratch\nCOPY a /foo\n", rule);
}

#[test]
fn duplicate_stage_name() {
    fires(
        "FROM scratch AS b\nFROM scratch AS b\n",
        "DuplicateStageName",
        "Duplicate stage name \"b\", stage names should be unique",
        2,
    );
    silent(
        "FROM scratch AS b1\nFROM scratch AS b2\n",
        "DuplicateStageName",
    );
}

#[test]
fn reserved_stage_name() {
    let src = "FROM scratch AS scratch\nFROM scratch AS context\n";
    let found = hits(src, "ReservedStageName");
    assert_eq!(found.len(), 2);
    assert_eq!(
        found[0],
        (
            "Stage name should not use the same name as reserved stage \"scratch\"".into(),
            1,
            1
        )
    );
    assert_eq!(found[1].1, 2);
    silent("FROM scratch\nFROM scratch AS a\n", "ReservedStageName");
}

#[test]
fn json_args_recommended() {
    let rule = "JSONArgsRecommended";
    fires(
        "FROM scratch\nCMD mycommand\n",
        rule,
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
        2,
    );
    fires(
        "FROM scratch\nENTRYPOINT mycommand\n",
        rule,
        "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
        2,
    );
    silent(
        "FROM scratch\nSHELL [\"/bin/sh\", \"-c\"]\nCMD mycommand\n",
        rule,
    );
    silent(
        "FROM scratch AS base\nSHELL [\"/x\"]\n\nFROM base\nENTRYPOINT mycommand\n",
        rule,
    );
    silent("FROM scratch\nCMD [\"mycommand\"]\n", rule);
}

#[test]
fn maintainer_deprecated() {
    fires(
        "FROM scratch\nMAINTAINER me@example.org\n",
        "MaintainerDeprecated",
        "Maintainer instruction is deprecated in favor of using label",
        2,
    );
    silent(
        "FROM scratch\nLABEL org.opencontainers.image.authors=\"me@example.org\"\n",
        "MaintainerDeprecated",
    );
}

#[test]
fn undefined_arg_in_from() {
    let rule = "UndefinedArgInFrom";
    fires(
        "FROM --platform=$BULIDPLATFORM scratch\n",
        rule,
        "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
        1,
    );
    fires(
        "ARG tag=latest\nFROM busybox:${tag}${version} AS b\n",
        rule,
        "FROM argument 'version' is not declared",
        2,
    );
    silent("ARG base=scratch\nFROM $base\n", rule);
    silent("FROM --platform=$BUILDPLATFORM scratch\n", rule);
    silent("ARG VERSION\nFROM busybox:stable${VERSION}\n", rule);
}

#[test]
fn workdir_relative_path() {
    let rule = "WorkdirRelativePath";
    fires(
        "FROM scratch\nWORKDIR app/\n",
        rule,
        "Relative workdir \"app/\" can have unexpected results if the base image changes",
        2,
    );
    silent(
        "FROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n",
        rule,
    );
    silent("FROM scratch\nWORKDIR /app\nWORKDIR sub\n", rule);
}

#[test]
fn undefined_var() {
    let rule = "UndefinedVar";
    fires(
        "FROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
        rule,
        "Usage of undefined variable '$foo'",
        2,
    );
    fires(
        "FROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nCOPY $DIR_ASSET .\n",
        rule,
        "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)",
        4,
    );
    fires(
        "FROM alpine\nENV PATH=$PAHT:/tmp/bin\n",
        rule,
        "Usage of undefined variable '$PAHT' (did you mean $PATH?)",
        2,
    );
    silent("FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n", rule);
    silent(
        "FROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n",
        rule,
    );
    silent("FROM alpine\nRUN echo $PATH $undefined\n", rule);
}

#[test]
fn multiple_instructions_disallowed() {
    let src = "FROM scratch\nENTRYPOINT [\"/a\"]\nENTRYPOINT [\"/b\"]\nCMD [\"/a\"]\nCMD [\"/b\"]\nHEALTHCHECK CMD [\"/a\"]\nHEALTHCHECK CMD [\"/b\"]\n";
    let found = hits(src, "MultipleInstructionsDisallowed");
    let lines: Vec<usize> = found.iter().map(|h| h.1).collect();
    assert_eq!(lines, [2, 4, 6]);
    assert_eq!(
        found[0].0,
        "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used"
    );
    silent(
        "FROM scratch AS a\nCMD [\"/a\"]\n\nFROM a AS b\nCMD [\"/b\"]\n",
        "MultipleInstructionsDisallowed",
    );
}

#[test]
fn legacy_key_value_format() {
    let rule = "LegacyKeyValueFormat";
    let found = hits("FROM scratch\nENV testkey value\nLABEL key value\n", rule);
    assert_eq!(
        found,
        [
            (
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
                    .to_owned(),
                2,
                1
            ),
            (
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format"
                    .to_owned(),
                3,
                1
            ),
        ]
    );
    silent("FROM scratch\nENV testkey=value\nLABEL key=value\n", rule);
}

#[test]
fn redundant_target_platform() {
    let rule = "RedundantTargetPlatform";
    fires(
        "FROM --platform=$TARGETPLATFORM scratch\n",
        rule,
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        1,
    );
    fires(
        "FROM --platform=${TARGETPLATFORM} scratch\n",
        rule,
        "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior",
        1,
    );
    silent("FROM --platform=$BUILDPLATFORM scratch\n", rule);
}

#[test]
fn secrets_used_in_arg_or_env() {
    let src = "FROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\n";
    let found = hits(src, "SecretsUsedInArgOrEnv");
    let msgs: Vec<&str> = found.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Do not use ARG or ENV instructions for sensitive data (ARG \"SECRET_PASSPHRASE\")",
            "Do not use ARG or ENV instructions for sensitive data (ENV \"SUPER_Secret\")",
            "Do not use ARG or ENV instructions for sensitive data (ENV \"password\")",
            "Do not use ARG or ENV instructions for sensitive data (ENV \"secret\")",
            "Do not use ARG or ENV instructions for sensitive data (ARG \"super_duper_secret_token\")",
            "Do not use ARG or ENV instructions for sensitive data (ARG \"auth\")",
            "Do not use ARG or ENV instructions for sensitive data (ENV \"apikey\")",
            "Do not use ARG or ENV instructions for sensitive data (ENV \"git_key\")",
        ]
    );
    assert_eq!(
        found.iter().map(|h| h.1).collect::<Vec<_>>(),
        [2, 3, 4, 4, 5, 5, 6, 7]
    );
    silent(
        "FROM scratch\nARG PUBLIC_KEY\nENV KEYBOARD=us\nARG TOKEN_FILE\n",
        "SecretsUsedInArgOrEnv",
    );
}

#[test]
fn invalid_default_arg_in_from() {
    let rule = "InvalidDefaultArgInFrom";
    let opts = LintOptions {
        build_args: BTreeMap::from([("VERSION".to_owned(), "latest".to_owned())]),
        ..LintOptions::default()
    };
    assert_eq!(
        hits_with("ARG VERSION\nFROM busybox:$VERSION\n", &opts, rule),
        [(
            "Default value for ARG busybox:$VERSION results in empty or invalid base image name"
                .to_owned(),
            2,
            1
        )]
    );
    fires(
        "ARG IMAGE\nFROM $IMAGE\n",
        rule,
        "Default value for ARG $IMAGE results in empty or invalid base image name",
        2,
    );
    silent("ARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n", rule);
    silent("ARG VARIANT\nFROM busybox:stable${VARIANT}\n", rule);
    silent("ARG TAG\nFROM alpine:${TAG:-3.14}\n", rule);
}

#[test]
fn from_platform_flag_const_disallowed() {
    let rule = "FromPlatformFlagConstDisallowed";
    fires(
        "FROM --platform=linux/amd64 scratch\n",
        rule,
        "FROM --platform flag should not use constant value \"linux/amd64\"",
        1,
    );
    silent(
        "FROM --platform=linux/amd64 scratch AS my_amd64_stage\n",
        rule,
    );
    silent("FROM --platform=linux/amd64 scratch AS linux\n", rule);
    silent("FROM --platform=$BUILDPLATFORM scratch\n", rule);
}

#[test]
fn expose_proto_casing() {
    fires(
        "FROM scratch\nEXPOSE 80/TcP\n",
        "ExposeProtoCasing",
        "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
        2,
    );
    silent(
        "FROM scratch\nEXPOSE 80/tcp 53/udp 8080\n",
        "ExposeProtoCasing",
    );
}

#[test]
fn expose_invalid_format() {
    let rule = "ExposeInvalidFormat";
    fires(
        "FROM scratch\nEXPOSE 127.0.0.1:80:80\n",
        rule,
        "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'",
        2,
    );
    fires(
        "FROM scratch\nARG P=80:80\nEXPOSE $P\n",
        rule,
        "EXPOSE instruction should not define an IP address or host-port mapping, found '80:80'",
        3,
    );
    silent("FROM scratch\nEXPOSE 80 443/tcp\n", rule);
}

#[test]
fn run_recursive_ownership() {
    let rule = "RunRecursiveOwnership";
    let src = "FROM alpine\nWORKDIR /app\nCOPY . .\nRUN apk add git && chown -R app:app /app\n";
    fires(
        src,
        rule,
        "chown -R on \"/app\" copies the files COPY wrote there (line 3) into a new layer; use COPY --chown instead",
        4,
    );
    let src = "FROM alpine\nADD src /srv/src\nRUN set -e; chmod --recursive g+w /srv\n";
    fires(
        src,
        rule,
        "chmod -R on \"/srv\" copies the files ADD wrote there (line 2) into a new layer; use ADD --chmod instead",
        3,
    );
    silent(
        "FROM alpine\nCOPY . /app\nRUN chown -R app /data && chown app /app\n",
        rule,
    );
    silent(
        "FROM alpine AS a\nCOPY . /app\n\nFROM a\nRUN chown -R app /app\n",
        rule,
    );
}

#[test]
fn from_variable_not_portable() {
    let rule = "FromVariableNotPortable";
    let src = "FROM scratch AS build\nFROM scratch\nARG SRC=build\nCOPY --from=$SRC /a /a\n";
    assert_eq!(
        hits(src, rule),
        [("COPY --from=$SRC uses a variable: kiln expands it but BuildKit does not (moby/moby#34482), so docker build reads it literally".to_owned(), 4, 13)]
    );
    let src = "FROM scratch AS build\nFROM alpine\nARG S=build\nRUN --mount=type=bind,from=${S},target=/s ls /s\n";
    let found = hits(src, rule);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .0
            .starts_with("RUN --mount from=${S} uses a variable"),
        "{found:?}"
    );
    assert_eq!(found[0].1, 4);
    silent(
        "FROM scratch AS build\nFROM scratch\nCOPY --from=build /a /a\n",
        rule,
    );
}

#[test]
fn parse_errors_are_errors_not_findings() {
    let err = lint("FROM scratch\nBADCMD\n", &LintOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("unknown instruction: BADCMD"),
        "{err}"
    );
}

#[test]
fn stage_errors_keep_the_findings_before_them() {
    let report = lint(
        "FROM --platform=$BULIDPLATFORM scratch\n",
        &LintOptions::default(),
    )
    .unwrap();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].rule, "UndefinedArgInFrom");
    let error = report
        .build_error
        .expect("the empty platform stops the stages");
    assert_eq!(
        error.message,
        "empty platform value from expression $BULIDPLATFORM"
    );
}

#[test]
fn base_image_env_defines_variables() {
    let source = "FROM python AS base\nARG VERSION=$PYTHON_VERSION\n";
    assert_eq!(hits(source, "UndefinedVar").len(), 1);
    let opts = LintOptions {
        image_env: BTreeMap::from([(
            "python".to_owned(),
            vec![("PYTHON_VERSION".to_owned(), "3.12".to_owned())],
        )]),
        ..LintOptions::default()
    };
    assert_eq!(hits_with(source, &opts, "UndefinedVar"), []);
}
