//! Hostile input to every operation: each gets INVALID_ARGUMENT or
//! INVALID_API_KEY before any storage is touched, with a message that does
//! not echo the input, and nothing panics.

mod support;

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, ErrorCode, FinalStatus, KeyEnvironment, Lupa, NewProject,
    ResolveRequest,
};

fn bad_ids() -> Vec<String> {
    vec![
        String::new(),
        "bad id".into(),
        "abc'; DROP TABLE deployment;--".into(),
        "x".repeat(65),
        "a".repeat(1 << 20),
        "a\0b".into(),
        "é".into(),
        "a/b".into(),
        "a%b".into(),
        "a\nb".into(),
        "*".into(),
    ]
}

fn check(what: &str, input: &str, r: Result<impl std::fmt::Debug, lupa_core::Error>, code: ErrorCode) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), code, "{what}: {e}");
    assert!(e.message().len() < 200, "{what}: the message must not echo the input");
    if input.len() > 3 {
        assert!(!e.message().contains(input), "{what}: the message echoes the input");
    }
}

async fn every_operation_rejects(lupa: &Lupa) {
    let live = Caller::KeyEnvironment(KeyEnvironment::Live);
    for bad in bad_ids() {
        let b = bad.as_str();
        let inv = ErrorCode::InvalidArgument;
        check(
            "create_project id",
            b,
            lupa.create_project(NewProject { id: Some(bad.clone()), org_id: "o".into(), name: "n".into() }).await,
            inv,
        );
        check(
            "create_project org",
            b,
            lupa.create_project(NewProject { id: Some("p".into()), org_id: bad.clone(), name: "n".into() }).await,
            inv,
        );
        check("get_project", b, lupa.get_project(b).await, inv);
        check("delete_project", b, lupa.delete_project(b).await, inv);
        check("list_deployments", b, lupa.list_deployments(b, None, None).await, inv);
        check("history", b, lupa.history(b, None, None).await, inv);
        for (project, id, snapshot) in [(b, "d", "s"), ("p", b, "s"), ("p", "d", b)] {
            let r = lupa
                .create_deployment(CreateDeployment {
                    project: project.into(),
                    id: Some(id.into()),
                    snapshot: snapshot.into(),
                    environment: Environment::Staging,
                    created_at: None,
                })
                .await;
            check("create_deployment", b, r, inv);
        }
        check("get_deployment", b, lupa.get_deployment(b).await, inv);
        check("set_status", b, lupa.set_status(b, FinalStatus::Ready, None).await, inv);
        check("promote project", b, lupa.promote(b, "d").await, inv);
        check("promote deployment", b, lupa.promote("p", b).await, inv);
        check("set_environment", b, lupa.set_environment("p", b, Environment::Production).await, inv);
        check("delete_deployment", b, lupa.delete_deployment(b, "d").await, inv);
        check("rollback", b, lupa.rollback(b).await, inv);
        check("resolve project", b, lupa.resolve(&ResolveRequest::new(b, live.clone())).await, inv);
        if !b.is_empty() {
            // An empty Deployment-Id header means none.
            let r = lupa.resolve(&ResolveRequest::new("p", live.clone()).deployment_id(b)).await;
            check("resolve deployment id", b, r, inv);
        }
        // A malformed key wins over every other error.
        let r = lupa.resolve(&ResolveRequest::new(b, Caller::ApiKey(bad.clone()))).await;
        check("resolve with a bad key", b, r, ErrorCode::InvalidApiKey);
        check("parse_api_key", b, lupa_core::parse_api_key(b), ErrorCode::InvalidApiKey);
    }
    let huge_name = "n".repeat(1 << 20);
    check(
        "project name",
        &huge_name,
        lupa.create_project(NewProject { id: Some("p".into()), org_id: "o".into(), name: huge_name.clone() }).await,
        ErrorCode::InvalidArgument,
    );
    check(
        "NUL in a name",
        "a\0b",
        lupa.create_project(NewProject { id: Some("p".into()), org_id: "o".into(), name: "a\0b".into() }).await,
        ErrorCode::InvalidArgument,
    );
    check(
        "NUL in a message",
        "x\0",
        lupa.set_status("d", FinalStatus::Failed, Some("x\0".into())).await,
        ErrorCode::InvalidArgument,
    );
    check(
        "empty name",
        "",
        lupa.create_project(NewProject { id: Some("p".into()), org_id: "o".into(), name: String::new() }).await,
        ErrorCode::InvalidArgument,
    );
    let r = lupa
        .create_deployment(CreateDeployment {
            project: "p".into(),
            id: Some("d".into()),
            snapshot: "s".into(),
            environment: Environment::Staging,
            created_at: Some("2025-13-45T99:00:00Z".into()),
        })
        .await;
    check("created_at", "2025-13-45", r, ErrorCode::InvalidArgument);
    for cursor in ["nope", "1.bad id", "x.y", &"9".repeat(1 << 20)] {
        check("cursor", cursor, lupa.list_deployments("p", None, Some(cursor)).await, ErrorCode::InvalidArgument);
    }
    check("limit", "0", lupa.list_projects(Some(0), None).await, ErrorCode::InvalidArgument);
    check("limit", "huge", lupa.list_projects(Some(1_000_000), None).await, ErrorCode::InvalidArgument);
    for key in [
        "",
        "Bearer lupa_sk_live_x",
        "lupa_sk_live_x\n",
        "lupa_sk_live_\0",
        &format!("lupa_sk_live_{}", "a".repeat(1 << 20)),
    ] {
        check("key", key, lupa_core::parse_api_key(key), ErrorCode::InvalidApiKey);
    }
    assert_eq!("prod".parse::<Environment>().unwrap_err().code(), ErrorCode::InvalidArgument);
    assert_eq!("processing".parse::<FinalStatus>().unwrap_err().code(), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn rejected_before_the_store_is_touched() {
    // On a closed handle any store access fails with STORAGE_UNAVAILABLE, so
    // INVALID_ARGUMENT here proves validation comes first.
    let lupa = Lupa::open(Config::new("memory://", "memory://")).await.unwrap();
    lupa.close().await;
    every_operation_rejects(&lupa).await;
}

#[tokio::test]
async fn rejected_on_postgres_and_redis() {
    let (Some(db), Some(redis)) = (support::postgres(), support::redis()) else { return };
    let mut config = Config::new(db, redis);
    config.schema = support::unique("lupa_bad").to_lowercase();
    config.key_prefix = format!("{}:", config.schema);
    let lupa = Lupa::open(config).await.unwrap();
    every_operation_rejects(&lupa).await;
    // The tables are intact and empty.
    assert!(lupa.list_projects(None, None).await.unwrap().items.is_empty());
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error_without_secrets() {
    for (store, cache) in [
        ("mysql://u:hunter2@h/db", "none"),
        ("memory://", "memcached://u:hunter2@h"),
        ("postgres://u:hunter2@[bad", "none"),
    ] {
        let e = Lupa::open(Config::new(store, cache)).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{store} {cache}: {e}");
        assert!(!e.message().contains("hunter2"), "{e}");
    }
    let mut c = Config::new("postgres://u:hunter2@127.0.0.1:1/db", "none");
    c.schema = "Robert'); DROP TABLE".into();
    let e = Lupa::open(c).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let mut c = Config::new("postgres://u:hunter2@127.0.0.1:1/db", "none");
    c.store_timeout = std::time::Duration::from_millis(300);
    let e = Lupa::open(c).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorageUnavailable);
    assert!(!e.message().contains("hunter2"), "{e}");
}

/// TLS URLs build a TLS client (one crypto provider, chosen at build time):
/// against servers that do not speak TLS they fail cleanly, never panic.
#[tokio::test]
async fn tls_urls_fail_cleanly_against_plain_servers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = Config::new("memory://", format!("rediss://127.0.0.1:{port}"));
    c.cache_timeout = std::time::Duration::from_millis(200);
    let lupa = Lupa::open(c).await.unwrap();
    lupa.create_project(NewProject { id: Some("p".into()), org_id: "o".into(), name: "n".into() }).await.unwrap();
    let r = lupa.resolve(&ResolveRequest::new("p", Caller::KeyEnvironment(KeyEnvironment::Live))).await;
    assert_eq!(r.unwrap_err().code(), ErrorCode::NoProductionDeployment, "the cache failure degrades to the store");
    if let Some(db) = support::postgres() {
        let sep = if db.contains('?') { '&' } else { '?' };
        let mut c = Config::new(format!("{db}{sep}sslmode=require"), "none");
        c.store_timeout = std::time::Duration::from_secs(2);
        match Lupa::open(c).await {
            // The local server may or may not offer TLS; either way no panic.
            Ok(l) => l.close().await,
            Err(e) => assert_eq!(e.code(), ErrorCode::StorageUnavailable, "{e}"),
        }
    }
}
