//! The `tapline` binary against a real server (SQLite): the exit codes and JSON a script sees
//! for a rate-limited tap, a tap while unpaired, and a device signed out from another one,
//! which `account forget` turns back into a profile that can sign in again; and the newer
//! features (a moment, together time, questions, the reconnect plan, moments and the recap)
//! from two terminals.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tapline_e2e::{Backend, TestServer};
use tapline_server::Settings;

/// What one run of `tapline` left: its exit code and its stdout, one JSON object per line.
struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn last(&self) -> &Value {
        self.lines.last().expect("a JSON line")
    }
}

/// Runs `tapline --json --profile PROFILE ARGS...` against `server`, with profiles in `home`.
async fn tapline(home: &Path, server: &str, profile: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapline"));
    cmd.env("TAPLINE_HOME", home)
        .env("TAPLINE_SERVER", server)
        .env_remove("TAPLINE_PROFILE")
        .args(["--json", "--profile", profile])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run tapline"))
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect::<Vec<Value>>();
    for l in &lines {
        assert!(
            l.get("result").is_some() || l.get("event").is_some() || l.get("error").is_some(),
            "every line says what it is: {l}"
        );
    }
    Run {
        code: out.status.code().expect("an exit code, not a signal"),
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_see_the_documented_exit_codes() {
    let server = TestServer::start_with(
        Backend::Sqlite,
        Settings {
            taps_per_minute: 3,
            jobs_every: None,
            ..Settings::default()
        },
    )
    .await
    .expect("SQLite is always there");
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("tapline-cli-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let t = |profile: &'static str, args: &'static [&'static str]| {
        let (home, url) = (home.clone(), url.clone());
        async move { tapline(&home, &url, profile, args).await }
    };

    // Not signed in: 4.
    let r = t("sam", &["tap"]).await;
    assert_eq!(r.code, 4, "{:?} {}", r.lines, r.stderr);

    assert_eq!(
        t(
            "sam",
            &["account", "create", "--name", "Sam", "--tz", "Europe/Paris"]
        )
        .await
        .code,
        0
    );
    assert_eq!(
        t(
            "alex",
            &[
                "account",
                "create",
                "--name",
                "Alex",
                "--tz",
                "America/New_York"
            ]
        )
        .await
        .code,
        0
    );

    // A tap while unpaired is refused for good: 4, NOT_PAIRED.
    let r = t("alex", &["tap"]).await;
    assert_eq!(r.code, 4, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "NOT_PAIRED");

    let invite = t("sam", &["invite"]).await;
    let code = invite.last()["code"].as_str().unwrap().to_owned();
    let join = tapline(&home, &url, "alex", &["join", &code]).await;
    assert_eq!(join.code, 0, "{:?}", join.lines);
    // A used code is refused: 5, with its reason.
    let again = tapline(&home, &url, "alex", &["join", &code]).await;
    assert_eq!(again.code, 5, "{:?}", again.lines);

    // Three taps a minute (the refused one counted): the next waits for the limit: 6, still
    // queued, with the delay.
    let mut sent = 0;
    let limited = loop {
        let r = t("alex", &["tap"]).await;
        if r.code != 0 {
            break r;
        }
        assert_eq!(r.last()["tap"]["state"], "sent");
        sent += 1;
        assert!(sent <= 3, "never limited");
    };
    assert!(sent >= 2, "{sent} sent");
    assert_eq!(limited.code, 6, "{:?} {}", limited.lines, limited.stderr);
    let result = limited.last();
    assert_eq!(result["result"], "tap");
    assert_eq!(result["tap"]["state"], "queued");
    assert_eq!(result["outbox"]["blocked"]["reason"], "RATE_LIMITED");
    assert!(
        result["outbox"]["blocked"]["retry_after_ms"]
            .as_u64()
            .is_some()
    );
    let status = t("alex", &["status"]).await;
    assert_eq!(status.code, 0);
    assert_eq!(status.last()["unsent"]["taps"], 1, "{}", status.last());
    assert_eq!(status.last()["taps"][0]["state"], "queued");

    // A second device of Alex's account, signed out from the first.
    let link = t("alex", &["link"]).await;
    let code = link.last()["code"].as_str().unwrap().to_owned();
    assert_eq!(
        tapline(&home, &url, "alex-watch", &["link", &code])
            .await
            .code,
        0
    );
    let devices = t("alex", &["devices"]).await;
    let watch = devices.last()["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current"] == false)
        .unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Any unique prefix names it.
    let revoke = tapline(&home, &url, "alex", &["devices", "--revoke", &watch[..13]]).await;
    assert_eq!(revoke.code, 0, "{:?}", revoke.lines);

    let r = t("alex-watch", &["tap"]).await;
    assert_eq!(r.code, 4, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["reason"], "SIGNED_OUT");
    let error = r.last()["error"].as_str().unwrap();
    assert!(error.contains("account forget --yes"), "{error}");
    let status = t("alex-watch", &["status"]).await;
    assert_eq!(status.code, 4);
    assert_eq!(status.last()["signed_out"], true);
    assert_eq!(status.last()["taps"][0]["state"], "refused");
    assert_eq!(status.last()["taps"][0]["refusal"]["code"], "SIGNED_OUT");
    const CREATE: &[&str] = &[
        "account",
        "create",
        "--name",
        "Alex",
        "--tz",
        "America/New_York",
    ];
    let r = t("alex-watch", CREATE).await;
    assert_eq!(
        (r.code, r.last()["reason"].as_str()),
        (5, Some("ALREADY_SIGNED_IN"))
    );
    assert_eq!(
        t("alex-watch", &["account", "forget"]).await.code,
        2,
        "needs --yes"
    );
    assert_eq!(
        t("alex-watch", &["account", "forget", "--yes"]).await.code,
        0
    );
    let r = t("alex-watch", CREATE).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);

    // Unknown and ambiguous ids: 5.
    let r = t("alex", &["routine", "rm", "ffffffff"]).await;
    assert_eq!(
        (r.code, r.last()["reason"].as_str()),
        (5, Some("NOT_FOUND"))
    );
    // Usage: 2.
    assert_eq!(t("alex", &["tap", "--kind", "wave"]).await.code, 2);

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}

/// `account export` saves the document (never over an existing file), `account delete` needs
/// the exact words, and afterwards the profile has no account and the partner is unpaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_from_the_terminal() {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("tapline-cli-leave-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let t = |profile: &'static str, args: Vec<String>| {
        let (home, url) = (home.clone(), url.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tapline(&home, &url, profile, &args).await
        }
    };
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        t("sam", words("account create --name Sam --tz Europe/Paris"))
            .await
            .code,
        0
    );
    assert_eq!(
        t("alex", words("account create --name Alex --tz Asia/Tokyo"))
            .await
            .code,
        0
    );
    let code = t("sam", words("invite")).await.last()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t("alex", vec!["join".into(), code]).await.code, 0);
    assert_eq!(t("alex", words("tap --note bye")).await.code, 0);

    let file = home.join("alex.json");
    let export = vec![
        "account".to_owned(),
        "export".into(),
        "--out".into(),
        file.display().to_string(),
    ];
    let r = t("alex", export.clone()).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["result"], "export");
    assert_eq!(r.last()["taps"], 1);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["taps"][0]["note"], "bye");
    assert_eq!(doc["account"]["time_zone"], "Asia/Tokyo");
    let again = t("alex", export).await;
    assert_eq!(again.code, 2, "an existing file is never overwritten");

    let delete = |confirm: &str| {
        vec![
            "account".to_owned(),
            "delete".into(),
            "--confirm".into(),
            confirm.into(),
        ]
    };
    let r = t("alex", delete("yes")).await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "INVALID_ARGUMENT");
    let r = t("alex", delete("delete my account")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["deleted"], true);
    assert_eq!(t("alex", words("account show")).await.code, 4);
    let r = t("sam", words("tap")).await;
    assert_eq!(r.code, 4, "Sam is no longer paired: {:?}", r.lines);
    assert_eq!(r.last()["reason"], "NOT_PAIRED");

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}

/// `space ask` / `status` / `answer` / `end`: the partner sees the moment and answers it, a tap
/// to the asker waits, and the refusals a script sees (asking twice, answering when there is
/// nothing to answer, a bad `--until`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_from_the_terminal() {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let url = format!("http://{}", server.addr);
    // `--until 2h` is read against this machine's clock, as a user's terminal would.
    server.clock.set(chrono::Utc::now());
    let home = std::env::temp_dir().join(format!("tapline-cli-space-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let t = |profile: &'static str, args: &'static str| {
        let (home, url) = (home.clone(), url.clone());
        async move {
            let args: Vec<&str> = args.split(' ').collect();
            tapline(&home, &url, profile, &args).await
        }
    };
    assert_eq!(
        t("sam", "account create --name Sam --tz Europe/Paris")
            .await
            .code,
        0
    );
    assert_eq!(
        t("alex", "account create --name Alex --tz Asia/Tokyo")
            .await
            .code,
        0
    );
    let code = t("sam", "invite").await.last()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(tapline(&home, &url, "alex", &["join", &code]).await.code, 0);

    let r = t("sam", "space ask --reason overwhelmed --until 90s").await;
    assert_eq!(r.code, 5, "under five minutes is refused: {:?}", r.lines);
    let r = t("sam", "space ask --reason overwhelmed --until soon").await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "INVALID_ARGUMENT");

    let r = t("sam", "space ask --reason overwhelmed --until 2h").await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["result"], "space_asked");
    assert_eq!(r.last()["space"]["reason"], "Overwhelmed");
    assert_eq!(r.last()["space"]["open_ended"], false);
    let r = t("sam", "space ask").await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "SPACE_ALREADY_ASKED");

    let r = t("alex", "space status").await;
    assert_eq!(r.code, 0, "{:?}", r.lines);
    assert!(r.last()["mine"].is_null());
    assert_eq!(r.last()["partners"]["reason"], "Overwhelmed");
    assert_eq!(t("alex", "tap --note later").await.code, 0);
    let r = t("alex", "space answer take-your-time").await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["space"]["answer"], "TakeYourTime");
    let r = t("sam", "space answer im-here").await;
    assert_eq!(r.code, 5, "Alex asked for nothing: {:?}", r.lines);
    assert_eq!(r.last()["reason"], "NOT_FOUND");

    let r = t("sam", "space status").await;
    assert_eq!(
        r.last()["mine"]["held_taps"],
        1,
        "Alex's tap waits: {:?}",
        r.lines
    );
    let r = t("sam", "space end").await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["space"]["held_taps"], 1);
    assert!(r.last()["space"]["ended_at"].is_string());
    let r = t("sam", "space status").await;
    assert!(r.last()["mine"].is_null(), "{:?}", r.lines);
    let r = t("sam", "space end").await;
    assert_eq!(r.code, 5, "nothing left to end: {:?}", r.lines);

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}

/// `together`, `meet` and `questions` from two terminals: a proposal confirmed and ended with
/// the kept tap counted, the next meeting set and cleared, and a question answered by both
/// and revealed; with the refusals a script sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn together_and_questions_from_the_terminal() {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    // `meet set` dates are read against this machine's clock, as a user's terminal would.
    server.clock.set(chrono::Utc::now());
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("tapline-cli-together-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let t = |profile: &'static str, args: Vec<String>| {
        let (home, url) = (home.clone(), url.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tapline(&home, &url, profile, &args).await
        }
    };
    let w = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        t("sam", w("account create --name Sam --tz Europe/Paris"))
            .await
            .code,
        0
    );
    assert_eq!(
        t("alex", w("account create --name Alex --tz Asia/Tokyo"))
            .await
            .code,
        0
    );
    let code = t("sam", w("invite")).await.last()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t("alex", vec!["join".into(), code]).await.code, 0);

    let r = t("alex", w("together confirm")).await;
    assert_eq!(r.code, 5, "nothing to confirm: {:?}", r.lines);
    let r = t("sam", w("together start --for 45m")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let r = t("sam", w("together start")).await;
    assert_eq!(r.last()["reason"], "TOGETHER_ALREADY", "{:?}", r.lines);
    let r = t("alex", w("together confirm")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(t("alex", w("tap --note later")).await.code, 0);
    let r = t("sam", w("together end")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["together"]["held_taps"], 1, "{:?}", r.lines);

    let day = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let r = t(
        "sam",
        vec![
            "meet".into(),
            "set".into(),
            day.clone(),
            "19:30".into(),
            "--tz".into(),
            "asia/tokyo".into(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let r = t("alex", w("meet")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(
        r.last()["meeting"]["time_zone"],
        "Asia/Tokyo",
        "{:?}",
        r.lines
    );
    let r = t(
        "sam",
        vec![
            "meet".into(),
            "set".into(),
            "2020-01-01".into(),
            "10:00".into(),
        ],
    )
    .await;
    assert_eq!(r.code, 5, "in the past: {:?}", r.lines);
    assert_eq!(t("alex", w("meet clear")).await.code, 0);

    let r = t("sam", w("questions")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["progress"]["current"]["number"], 1);
    let r = t(
        "sam",
        vec![
            "questions".into(),
            "answer".into(),
            "A slow breakfast".into(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert!(r.last()["revealed"].is_null());
    let r = t("alex", w("questions")).await;
    assert_eq!(r.last()["progress"]["current"]["partner_answered"], true);
    assert!(
        r.last()["progress"]["current"]["partner_answer"].is_null(),
        "hidden"
    );
    let r = t(
        "alex",
        vec!["questions".into(), "answer".into(), "Music on".into()],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["revealed"]["partner_answer"], "A slow breakfast");
    assert_eq!(r.last()["progress"]["current"]["number"], 2);
    assert_eq!(t("alex", w("questions pause")).await.code, 0);
    let r = t(
        "sam",
        vec!["questions".into(), "answer".into(), "Later".into()],
    )
    .await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "QUESTIONS_PAUSED");
    let r = t("sam", w("questions history")).await;
    assert_eq!(r.last()["revealed"][0]["my_answer"], "A slow breakfast");

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}

/// Two fresh profiles, Sam (Paris) and Alex (Tokyo), paired; `t` runs `tapline` for either.
async fn paired_pair(
    home: &Path,
    url: &str,
) -> impl Fn(&'static str, Vec<String>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Run>>>
{
    let _ = std::fs::remove_dir_all(home);
    let (home, url) = (home.to_owned(), url.to_owned());
    let t = move |profile: &'static str, args: Vec<String>| {
        let (home, url) = (home.clone(), url.clone());
        Box::pin(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tapline(&home, &url, profile, &args).await
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = Run>>>
    };
    let w = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        t("sam", w("account create --name Sam --tz Europe/Paris"))
            .await
            .code,
        0
    );
    assert_eq!(
        t("alex", w("account create --name Alex --tz Asia/Tokyo"))
            .await
            .code,
        0
    );
    let code = t("sam", w("invite")).await.last()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t("alex", vec!["join".into(), code]).await.code, 0);
    t
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

fn instant(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str().map(|s| {
        s.parse()
            .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {s}"))
    })
}

/// `reconnect` from two terminals: suggested, accepted, the first step brought by the jobs
/// tick at each partner's own step time, marked done and seen by the partner; with the
/// refusals a script sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_from_the_terminal() {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    server.clock.set(chrono::Utc::now());
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("tapline-cli-reconnect-{}", std::process::id()));
    let t = paired_pair(&home, &url).await;

    let r = t("sam", words("reconnect")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert!(r.last()["plan"].is_null(), "none yet: {:?}", r.lines);
    let r = t("alex", words("reconnect accept")).await;
    assert_eq!(r.code, 5, "nothing to accept: {:?}", r.lines);
    let r = t("sam", words("reconnect start --at 20:30")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["plan"]["state"], "proposed");
    assert_eq!(r.last()["plan"]["local_time"], "20:30");
    let r = t("sam", words("reconnect start")).await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "RECONNECT_ALREADY");
    let r = t("alex", words("status")).await;
    assert_eq!(r.last()["reconnect_awaits_me"], true, "{:?}", r.lines);
    let r = t("alex", words("reconnect accept")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["plan"]["state"], "running");
    assert_eq!(r.last()["plan"]["steps"].as_array().unwrap().len(), 7);
    let r = t("sam", words("reconnect done 1")).await;
    assert_eq!(r.code, 5, "{:?}", r.lines);
    assert_eq!(r.last()["reason"], "RECONNECT_STEP_NOT_YET");

    // Each partner's first step comes at 20:30 on their own clock: Tokyo's comes first.
    let sam_next = instant(&t("sam", words("reconnect")).await.last()["plan"]["my_next_step_at"])
        .expect("Sam's first step has a time");
    let alex_next = instant(&t("alex", words("reconnect")).await.last()["plan"]["my_next_step_at"])
        .expect("Alex's first step has a time");
    assert_ne!(sam_next, alex_next, "seven hours apart");
    for at in [sam_next.min(alex_next), sam_next.max(alex_next)] {
        server.clock.set(at);
        assert!(server.tick().await.reconnect_steps >= 1, "a step at {at}");
    }
    let r = t("sam", words("reconnect")).await;
    assert_eq!(r.last()["plan"]["my_steps_come"], 1, "{:?}", r.lines);
    assert!(r.last()["plan"]["steps"][0]["came_on"].is_string());
    assert!(r.last()["plan"]["steps"][1]["came_at"].is_null());
    let r = t("sam", words("status")).await;
    assert_eq!(r.last()["reconnect_step"]["number"], 1, "{:?}", r.lines);
    let r = t("sam", words("reconnect done 1")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["plan"]["steps"][0]["i_done"], true);
    let r = t("sam", words("status")).await;
    assert!(r.last()["reconnect_step"].is_null(), "done: {:?}", r.lines);
    let r = t("alex", words("reconnect")).await;
    assert_eq!(r.last()["plan"]["steps"][0]["partner_done"], true);
    assert_eq!(r.last()["plan"]["partner_steps_come"], 1);

    let r = t("alex", words("reconnect pause")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["plan"]["state"], "paused");
    assert!(r.last()["plan"]["my_next_step_at"].is_null());
    let r = t("sam", words("reconnect resume")).await;
    assert_eq!(r.last()["plan"]["state"], "running", "{:?}", r.lines);
    let r = t("sam", words("reconnect end")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["plan"]["state"], "ended");
    assert_eq!(r.last()["plan"]["ended_by_me"], true);

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}

/// `moments` and `recap` from two terminals: a tap's note and a mood answer kept as moments,
/// seen by both, forgotten by the one who kept it; the recap's series with the taps and the
/// mood answers; the schedule set and turned off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moments_and_recap_from_the_terminal() {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    server.clock.set(chrono::Utc::now());
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("tapline-cli-moments-{}", std::process::id()));
    let t = paired_pair(&home, &url).await;

    let r = t(
        "alex",
        vec!["tap".into(), "--note".into(), "thinking of you".into()],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let tap_id = r.last()["tap"]["tap_id"].as_str().expect("sent").to_owned();
    let r = t(
        "alex",
        vec![
            "moments".into(),
            "keep".into(),
            "--tap".into(),
            tap_id.clone(),
        ],
    )
    .await;
    assert_eq!(r.code, 5, "one's own tap: {:?}", r.lines);
    assert_eq!(r.last()["reason"], "NOTHING_TO_KEEP");
    // Sam names it by its first characters, as `listen` shows them.
    let short = tap_id[..13].to_owned();
    let r = t(
        "sam",
        vec!["moments".into(), "keep".into(), "--tap".into(), short],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["moment"]["text"], "thinking of you");
    assert_eq!(r.last()["already_kept"], false);

    let r = t("sam", words("checkin ask --prompt mood-01")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let checkin_id = r.last()["checkin"]["checkin_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t("sam", words("checkin answer 4")).await.code, 0);
    assert_eq!(t("alex", words("checkin answer 2")).await.code, 0);
    let r = t(
        "sam",
        vec![
            "moments".into(),
            "keep".into(),
            "--checkin".into(),
            checkin_id[..13].to_owned(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);

    for who in ["sam", "alex"] {
        let r = t(who, words("moments")).await;
        assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
        assert_eq!(
            r.last()["moments"].as_array().unwrap().len(),
            2,
            "{who}: {:?}",
            r.lines
        );
    }
    let r = t("sam", words("recap")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let recap = &r.last()["recap"];
    assert_eq!(recap["dates"].as_array().unwrap().len(), 7);
    assert_eq!(recap["taps_received"][6], 1, "{recap}");
    assert_eq!(recap["my_mood"][6], 4, "{recap}");
    assert_eq!(recap["partner_mood"][6], 2, "{recap}");
    assert!(recap["my_mood"][0].is_null());
    assert_eq!(recap["moments"].as_array().unwrap().len(), 2);

    let r = t("sam", words("recap at sun 19:00")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["schedule"]["weekday"], 7);
    assert!(r.last()["schedule"]["next_at"].is_string());
    let next_at = r.last()["schedule"]["next_at"].clone();
    let r = t("sam", words("recap schedule")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["result"], "recap_schedule", "{:?}", r.lines);
    assert_eq!(r.last()["schedule"]["enabled"], true, "{:?}", r.lines);
    assert_eq!(r.last()["schedule"]["weekday"], 7, "{:?}", r.lines);
    assert_eq!(r.last()["schedule"]["local_time"], "19:00", "{:?}", r.lines);
    assert_eq!(r.last()["schedule"]["next_at"], next_at, "{:?}", r.lines);
    // Alex chose none: off until chosen.
    let r = t("alex", words("recap schedule")).await;
    assert_eq!(r.last()["schedule"]["enabled"], false, "{:?}", r.lines);
    let r = t("sam", words("recap off")).await;
    assert_eq!(r.last()["schedule"]["enabled"], false, "{:?}", r.lines);
    let r = t("sam", words("recap schedule")).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert_eq!(r.last()["schedule"]["enabled"], false, "{:?}", r.lines);
    assert!(r.last()["schedule"]["next_at"].is_null(), "{:?}", r.lines);

    let moment_id = t("sam", words("moments")).await.last()["moments"][0]["moment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t("sam", vec!["moments".into(), "forget".into(), moment_id]).await;
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let r = t("alex", words("moments")).await;
    assert_eq!(r.last()["moments"].as_array().unwrap().len(), 1);

    let _ = std::fs::remove_dir_all(&home);
    server.finish().await;
}
