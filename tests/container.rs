//! Contract v1.5, "Deploying": the container image's recipe, read as text
//! (no container engine runs on the CI machines; `scripts/hadolint.sh`
//! lints it as well). The image runs as an unprivileged user in a working
//! directory that user owns, so the default SQLite file works with a bare
//! `docker run`; its dependencies build in their own cached layer; it has
//! a health check; and the build context leaves out what it never reads.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(name)).unwrap()
}

/// The Dockerfile's instructions (continuation lines joined, comments
/// left out), split into stages at each `FROM`.
fn stages() -> Vec<Vec<String>> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let mut stages: Vec<Vec<String>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("FROM first").push(line.to_owned());
    }
    stages
}

fn position(stage: &[String], starts: &str) -> usize {
    stage
        .iter()
        .position(|line| line.starts_with(starts))
        .unwrap_or_else(|| panic!("no {starts:?} in {stage:#?}"))
}

#[test]
fn the_image_runs_unprivileged_in_a_directory_it_owns() {
    let stages = stages();
    let runtime = stages.last().unwrap();
    let user_made = runtime
        .iter()
        .position(|l| l.contains("useradd") && l.contains("--uid 10001"))
        .expect("an unprivileged user of its own");
    assert!(runtime[user_made].contains("--home-dir /app --create-home"));
    let workdir = position(runtime, "WORKDIR /app");
    let user = position(runtime, "USER 10001");
    assert!(user_made < workdir && workdir < user, "{runtime:#?}");
    let healthcheck = position(runtime, "HEALTHCHECK");
    assert!(runtime[healthcheck].contains("/healthz"));
    assert!(
        runtime
            .last()
            .unwrap()
            .starts_with("CMD [\"storybook\", \"serve\"]")
    );
}

#[test]
fn dependencies_build_in_their_own_layer() {
    let stages = stages();
    let build = stages
        .iter()
        .find(|s| s[0].contains(" AS build"))
        .expect("the build stage");
    let cook = position(build, "RUN cargo chef cook");
    let sources = position(build, "COPY . .");
    let compile = position(build, "RUN cargo build --release");
    assert!(cook < sources && sources < compile, "{build:#?}");
    // The same features and binary for the dependencies and the build.
    for flag in ["--release", "--locked", "--bin storybook", "FEATURES"] {
        assert!(
            build[cook].contains(flag) && build[compile].contains(flag),
            "{flag}"
        );
    }
}

#[test]
fn the_build_context_leaves_out_what_the_build_never_reads() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for left_out in [".git", "target", "tests", "scripts", "*.md"] {
        assert!(ignored.iter().any(|l| l == left_out), "{left_out} is sent");
    }
    for needed in ["src", "crates", "migrations", "Cargo.toml", "Cargo.lock"] {
        assert!(Path::new(ROOT).join(needed).exists());
        assert!(!ignored.iter().any(|l| l == needed), "{needed} is left out");
    }
}
