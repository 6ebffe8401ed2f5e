//! The checks: BuildKit's names, descriptions and documentation URLs, plus kiln's own two.

/// One check's fixed metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    /// BuildKit runs experimental checks only when `# check=experimental=` names them.
    pub experimental: bool,
    /// kiln's own checks have no page on docs.docker.com.
    pub kiln: bool,
}

impl Rule {
    const fn buildkit(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            experimental: false,
            kiln: false,
        }
    }

    /// BuildKit's documentation link (`https://docs.docker.com/go/dockerfile/rule/<kebab-name>/`);
    /// empty for kiln's own checks.
    pub fn url(&self) -> String {
        if self.kiln {
            return String::new();
        }
        format!(
            "https://docs.docker.com/go/dockerfile/rule/{}/",
            kebab(self.name)
        )
    }
}

/// `JSONArgsRecommended` → `json-args-recommended`: a run of capitals is one word.
fn kebab(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        let acronym_end = i > 0 && chars[i - 1].is_ascii_uppercase() && next_lower;
        if c.is_ascii_uppercase() && i > 0 && (prev_lower || acronym_end) {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

pub const STAGE_NAME_CASING: Rule =
    Rule::buildkit("StageNameCasing", "Stage names should be lowercase");
pub const FROM_AS_CASING: Rule = Rule::buildkit(
    "FromAsCasing",
    "The 'as' keyword should match the case of the 'from' keyword",
);
pub const NO_EMPTY_CONTINUATION: Rule = Rule::buildkit(
    "NoEmptyContinuation",
    "Empty continuation lines will become errors in a future release",
);
pub const CONSISTENT_INSTRUCTION_CASING: Rule = Rule::buildkit(
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
);
pub const DUPLICATE_STAGE_NAME: Rule =
    Rule::buildkit("DuplicateStageName", "Stage names should be unique");
pub const RESERVED_STAGE_NAME: Rule = Rule::buildkit(
    "ReservedStageName",
    "Reserved words should not be used as stage names",
);
pub const JSON_ARGS_RECOMMENDED: Rule = Rule::buildkit(
    "JSONArgsRecommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
);
pub const MAINTAINER_DEPRECATED: Rule = Rule::buildkit(
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
);
pub const UNDEFINED_ARG_IN_FROM: Rule =
    Rule::buildkit("UndefinedArgInFrom", "FROM command must use declared ARGs");
pub const WORKDIR_RELATIVE_PATH: Rule = Rule::buildkit(
    "WorkdirRelativePath",
    "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
);
pub const UNDEFINED_VAR: Rule = Rule::buildkit(
    "UndefinedVar",
    "Variables should be defined before their use",
);
pub const MULTIPLE_INSTRUCTIONS_DISALLOWED: Rule = Rule::buildkit(
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
);
pub const LEGACY_KEY_VALUE_FORMAT: Rule = Rule::buildkit(
    "LegacyKeyValueFormat",
    "Legacy key/value format with whitespace separator should not be used",
);
pub const REDUNDANT_TARGET_PLATFORM: Rule = Rule::buildkit(
    "RedundantTargetPlatform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
);
pub const SECRETS_USED_IN_ARG_OR_ENV: Rule = Rule::buildkit(
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
);
pub const INVALID_DEFAULT_ARG_IN_FROM: Rule = Rule::buildkit(
    "InvalidDefaultArgInFrom",
    "Default value for global ARG results in an empty or invalid base image name",
);
pub const FROM_PLATFORM_FLAG_CONST_DISALLOWED: Rule = Rule::buildkit(
    "FromPlatformFlagConstDisallowed",
    "FROM --platform flag should not use a constant value",
);
pub const COPY_IGNORED_FILE: Rule = Rule {
    experimental: true,
    ..Rule::buildkit(
        "CopyIgnoredFile",
        "Attempting to Copy file that is excluded by .dockerignore",
    )
};
pub const EXPOSE_PROTO_CASING: Rule = Rule::buildkit(
    "ExposeProtoCasing",
    "Protocol in EXPOSE instruction should be lowercase",
);
pub const EXPOSE_INVALID_FORMAT: Rule = Rule::buildkit(
    "ExposeInvalidFormat",
    "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
);
pub const RUN_RECURSIVE_OWNERSHIP: Rule = Rule {
    kiln: true,
    ..Rule::buildkit(
        "RunRecursiveOwnership",
        "Recursive chown/chmod of files copied earlier in the stage duplicates them in a new layer",
    )
};
pub const FROM_VARIABLE_NOT_PORTABLE: Rule = Rule {
    kiln: true,
    ..Rule::buildkit(
        "FromVariableNotPortable",
        "Variables in COPY --from and RUN --mount=from are expanded by kiln but not by BuildKit",
    )
};

/// Every check, in BuildKit's documentation order, kiln's own last.
pub const ALL: &[Rule] = &[
    STAGE_NAME_CASING,
    FROM_AS_CASING,
    NO_EMPTY_CONTINUATION,
    CONSISTENT_INSTRUCTION_CASING,
    DUPLICATE_STAGE_NAME,
    RESERVED_STAGE_NAME,
    JSON_ARGS_RECOMMENDED,
    MAINTAINER_DEPRECATED,
    UNDEFINED_ARG_IN_FROM,
    WORKDIR_RELATIVE_PATH,
    UNDEFINED_VAR,
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    LEGACY_KEY_VALUE_FORMAT,
    REDUNDANT_TARGET_PLATFORM,
    SECRETS_USED_IN_ARG_OR_ENV,
    INVALID_DEFAULT_ARG_IN_FROM,
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    COPY_IGNORED_FILE,
    EXPOSE_PROTO_CASING,
    EXPOSE_INVALID_FORMAT,
    RUN_RECURSIVE_OWNERSHIP,
    FROM_VARIABLE_NOT_PORTABLE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_the_documented_ones() {
        let slugs = [
            "stage-name-casing",
            "from-as-casing",
            "no-empty-continuation",
            "consistent-instruction-casing",
            "duplicate-stage-name",
            "reserved-stage-name",
            "json-args-recommended",
            "maintainer-deprecated",
            "undefined-arg-in-from",
            "workdir-relative-path",
            "undefined-var",
            "multiple-instructions-disallowed",
            "legacy-key-value-format",
            "redundant-target-platform",
            "secrets-used-in-arg-or-env",
            "invalid-default-arg-in-from",
            "from-platform-flag-const-disallowed",
            "copy-ignored-file",
            "expose-proto-casing",
            "expose-invalid-format",
        ];
        let buildkit: Vec<String> = ALL.iter().filter(|r| !r.kiln).map(Rule::url).collect();
        let expected: Vec<String> = slugs
            .iter()
            .map(|s| format!("https://docs.docker.com/go/dockerfile/rule/{s}/"))
            .collect();
        assert_eq!(buildkit, expected);
        assert_eq!(RUN_RECURSIVE_OWNERSHIP.url(), "");
    }
}
