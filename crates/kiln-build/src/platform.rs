//! Checks made once the stages are planned, before anything runs: kiln runs steps for the
//! host's platform only (there is no emulation), and some `RUN --mount` types not at all.
//!
//! `--platform` sets `TARGETPLATFORM` and friends (see `kiln_dockerfile::stages::automatic_args`);
//! a stage's platform is its `FROM --platform=`, else the target platform. A stage for another
//! platform can still be built when it runs nothing: no RUN in it nor in the stages it is built
//! `FROM`, down to `scratch` (the usual last stage of a cross-compiling Dockerfile); its config
//! then names that platform.

use kiln_dockerfile::instructions::{Instruction, MountType};
use kiln_dockerfile::stages::{Base, Dockerfile, Platform, Stage};
use kiln_image::ImageBuilder;
use kiln_image::oci_spec::image::{Arch, Os};

use crate::BuildRequest;
use crate::error::{BuildError, Result};

/// Parses a platform as containerd does (`linux/amd64`, `linux/arm/v7`, `arm64`, `linux`),
/// normalising aliases (`x86_64`, `aarch64`, `armhf`) to OCI names; `None` if it is not one.
pub fn parse_platform(text: &str) -> Option<Platform> {
    let parts: Vec<String> = text.split('/').map(str::to_ascii_lowercase).collect();
    if parts.iter().any(String::is_empty) {
        return None;
    }
    let host = Platform::host();
    let (os, arch, variant) = match parts.as_slice() {
        [one] if is_os(one) => (one.clone(), host.architecture, host.variant),
        [one] => ("linux".into(), one.clone(), String::new()),
        [os, arch] => (os.clone(), arch.clone(), String::new()),
        [os, arch, variant] => (os.clone(), arch.clone(), variant.clone()),
        _ => return None,
    };
    if !is_os(&os) {
        return None;
    }
    let (architecture, variant) = normalize_arch(&arch, &variant)?;
    Some(Platform {
        os: if os == "macos" { "darwin".into() } else { os },
        architecture,
        variant,
    })
}

fn is_os(s: &str) -> bool {
    [
        "linux", "windows", "darwin", "macos", "freebsd", "netbsd", "openbsd", "solaris",
    ]
    .contains(&s)
}

/// containerd's `normalizeArch`, for the architectures Go knows.
fn normalize_arch(arch: &str, variant: &str) -> Option<(String, String)> {
    let v = |s: &str| s.to_string();
    Some(match (arch, variant) {
        ("i386" | "386", _) => (v("386"), v(variant)),
        ("x86_64" | "x86-64" | "amd64", "v1") => (v("amd64"), String::new()),
        ("x86_64" | "x86-64" | "amd64", _) => (v("amd64"), v(variant)),
        ("aarch64" | "arm64", "8" | "v8") => (v("arm64"), String::new()),
        ("aarch64" | "arm64", _) => (v("arm64"), v(variant)),
        ("armhf", "") => (v("arm"), v("v7")),
        ("armel", "") => (v("arm"), v("v6")),
        ("arm", "" | "7") => (v("arm"), v("v7")),
        ("arm", "5" | "6" | "8") => (v("arm"), format!("v{variant}")),
        (
            "arm" | "ppc64le" | "ppc64" | "s390x" | "riscv64" | "mips64le" | "mips64" | "mipsle"
            | "mips" | "loong64" | "wasm",
            _,
        ) => (v(arch), v(variant)),
        _ => return None,
    })
}

/// The build's target platform: `--platform`, else the host's.
pub(crate) fn target(req: &BuildRequest) -> Result<Platform> {
    match req.platform.as_deref() {
        None => Ok(Platform::host()),
        Some(text) => parse_platform(text).ok_or_else(|| {
            BuildError::Invalid(format!(
                "invalid --platform {text:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
            ))
        }),
    }
}

/// Checks the stages `needed` can be built here: each runs on the host platform (or runs
/// nothing), and no RUN uses an unsupported mount. Errors point into the Dockerfile.
pub(crate) fn check(req: &BuildRequest, df: &Dockerfile, needed: &[usize]) -> Result<()> {
    let render = |e: kiln_dockerfile::Error| {
        BuildError::Dockerfile(e.render(&req.dockerfile_name, &req.dockerfile))
    };
    let target = target(req)?;
    for stage in needed.iter().filter_map(|&i| df.stages.get(i)) {
        check_mounts(stage).map_err(render)?;
        check_platform(df, stage, &target).map_err(|e| match e {
            Refusal::At(e) => render(e),
            Refusal::Plain(msg) => BuildError::Invalid(msg),
        })?;
    }
    Ok(())
}

/// A platform refusal: located at a `FROM --platform=`, or caused by `--platform`.
enum Refusal {
    At(kiln_dockerfile::Error),
    Plain(String),
}

fn check_platform(
    df: &Dockerfile,
    stage: &Stage,
    target: &Platform,
) -> std::result::Result<(), Refusal> {
    let host = Platform::host();
    let platform = match &stage.platform {
        None => target.clone(),
        Some(p) => parse_platform(&p.value).ok_or_else(|| {
            let msg = format!("invalid platform {:?}: expected OS/ARCH[/VARIANT]", p.value);
            Refusal::At(kiln_dockerfile::Error::new(msg, p.span))
        })?,
    };
    if platform == host || runs_nothing(df, stage) {
        return Ok(());
    }
    let msg = format!("kiln cannot build for {platform} on {host}: no emulation");
    Err(match &stage.platform {
        Some(p) => Refusal::At(kiln_dockerfile::Error::new(msg, p.span)),
        None => Refusal::Plain(format!(
            "{msg} (stage {} runs steps; only stages without RUN down to FROM scratch can \
             target another platform)",
            stage.display_name()
        )),
    })
}

/// No RUN here nor in the stages below, down to `FROM scratch`: nothing executes, so any
/// platform will do.
fn runs_nothing(df: &Dockerfile, stage: &Stage) -> bool {
    let no_run = !stage
        .instructions
        .iter()
        .any(|e| matches!(e.command.instruction, Instruction::Run(_)));
    no_run
        && match stage.base {
            Base::Scratch => true,
            Base::Stage(i) => df.stages.get(i).is_some_and(|s| runs_nothing(df, s)),
            Base::Image(_) => false,
        }
}

fn check_mounts(stage: &Stage) -> kiln_dockerfile::Result<()> {
    for ex in &stage.instructions {
        let Instruction::Run(run) = &ex.command.instruction else {
            continue;
        };
        for m in &run.mounts {
            if m.value.as_ref().is_some_and(|v| v.kind == MountType::Ssh) {
                let msg = "RUN --mount=type=ssh is not supported yet";
                return Err(kiln_dockerfile::Error::new(msg, m.span));
            }
        }
    }
    Ok(())
}

/// A `FROM scratch` stage's config names its platform (another than the host's only when it
/// runs nothing, see [`check`]).
pub(crate) fn scratch_for(
    req: &BuildRequest,
    stage: &Stage,
    mut builder: ImageBuilder,
) -> Result<ImageBuilder> {
    let platform = match &stage.platform {
        Some(p) => parse_platform(&p.value),
        None => Some(target(req)?),
    };
    let Some(p) = platform.filter(|p| *p != Platform::host()) else {
        return Ok(builder);
    };
    let oci = &mut builder.config_mut().oci;
    oci.set_os(Os::from(p.os.as_str()));
    oci.set_architecture(Arch::from(p.architecture.as_str()));
    oci.set_variant((!p.variant.is_empty()).then(|| p.variant.clone()));
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<String> {
        parse_platform(text).map(|p| p.to_string())
    }

    #[test]
    fn platforms_normalise_like_containerd() {
        assert_eq!(parsed("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(parsed("Linux/x86_64").as_deref(), Some("linux/amd64"));
        assert_eq!(parsed("linux/aarch64").as_deref(), Some("linux/arm64"));
        assert_eq!(parsed("linux/arm64/v8").as_deref(), Some("linux/arm64"));
        assert_eq!(parsed("linux/arm").as_deref(), Some("linux/arm/v7"));
        assert_eq!(parsed("arm64").as_deref(), Some("linux/arm64"));
        assert_eq!(parsed("linux"), Some(Platform::host().to_string()));
        for bad in [
            "",
            "linux/",
            "linux/amd64/v1/x",
            "nope/amd64",
            "linux/z80",
            "//",
        ] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }
}
