//! What the vectors do not cover, on every store: paging with cursors and
//! ties, generated ids, project deletion, history, rollback edge cases,
//! the promote-when-ready flag, health.

mod support;

use lupa_core::{
    Caller, ComponentHealth, Config, CreateDeployment, Environment, ErrorCode, FinalStatus, KeyEnvironment, Lupa,
    NewProject, ResolveRequest, Source,
};

async fn stores() -> Vec<(String, Lupa)> {
    let mut out = vec![
        ("memory".to_string(), Lupa::open(Config::new("memory://", "memory://")).await.unwrap()),
        ("sqlite".to_string(), Lupa::open(Config::new("sqlite::memory:", "memory://")).await.unwrap()),
    ];
    if let (Some(db), Some(redis)) = (support::postgres(), support::redis()) {
        let mut c = Config::new(db, redis);
        c.schema = support::unique("lupa_api").to_lowercase();
        c.key_prefix = format!("{}:", c.schema);
        out.push(("postgres+redis".to_string(), Lupa::open(c).await.unwrap()));
    }
    out
}

async fn finish(lupa: Lupa) {
    if let Some(p) = lupa.cache_probe() {
        p.clear().await.unwrap();
    }
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
}

async fn project(lupa: &Lupa, id: &str) {
    lupa.create_project(NewProject { id: Some(id.into()), org_id: "org".into(), name: id.into() }).await.unwrap();
}

async fn deployment(lupa: &Lupa, project: &str, id: &str, at: &str, ready: bool) {
    lupa.create_deployment(CreateDeployment {
        project: project.into(),
        id: Some(id.into()),
        snapshot: "snp".into(),
        environment: Environment::Staging,
        created_at: Some(at.into()),
    })
    .await
    .unwrap();
    if ready {
        lupa.set_status(id, FinalStatus::Ready, None).await.unwrap();
    }
}

fn live(p: &str) -> ResolveRequest {
    ResolveRequest::new(p, Caller::KeyEnvironment(KeyEnvironment::Live))
}

fn test_key(p: &str) -> ResolveRequest {
    ResolveRequest::new(p, Caller::KeyEnvironment(KeyEnvironment::Test))
}

#[tokio::test]
async fn paging_orders_newest_first_with_ties_by_greater_id() {
    for (name, lupa) in stores().await {
        project(&lupa, "p1").await;
        let same = "2025-10-28T10:00:00.000001Z";
        for id in ["a", "c", "b", "e", "d"] {
            deployment(&lupa, "p1", id, same, false).await;
        }
        deployment(&lupa, "p1", "new", "2025-10-28T11:00:00+01:00", false).await; // 10:00 UTC, older
        deployment(&lupa, "p1", "newest", "2025-10-29T00:00:00Z", false).await;
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = lupa.list_deployments("p1", Some(2), cursor.as_deref()).await.unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|d| d.id.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["newest", "e", "d", "c", "b", "a", "new"], "{name}");
        // Ties resolve the same way: the greater id wins.
        for id in ["a", "b", "c", "d", "e"] {
            lupa.set_status(id, FinalStatus::Ready, None).await.unwrap();
        }
        assert_eq!(lupa.resolve(&test_key("p1")).await.unwrap().deployment.unwrap().as_str(), "e", "{name}");
        let err = lupa.list_deployments("nope", None, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProjectNotFound, "{name}");
        finish(lupa).await;
    }
}

#[tokio::test]
async fn projects_generated_ids_paging_and_deletion() {
    for (name, lupa) in stores().await {
        let generated =
            lupa.create_project(NewProject { id: None, org_id: "org".into(), name: "Generated".into() }).await.unwrap();
        assert_eq!(generated.id.as_str().len(), 10, "{name}");
        for id in ["B", "a", "_", "Z0"] {
            project(&lupa, id).await;
        }
        let err = lupa
            .create_project(NewProject { id: Some("a".into()), org_id: "o".into(), name: "again".into() })
            .await
            .unwrap_err();
        assert_eq!((err.code(), err.http_status()), (ErrorCode::ProjectExists, 409), "{name}");
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = lupa.list_projects(Some(2), cursor.as_deref()).await.unwrap();
            ids.extend(page.items.iter().map(|p| p.id.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut want = vec!["B".to_string(), "Z0".into(), "_".into(), "a".into(), generated.id.to_string()];
        want.sort(); // byte order
        assert_eq!(ids, want, "{name}: projects in byte order");

        // Deleting a project removes its deployments, history and cache entries.
        deployment(&lupa, "a", "a_d1", "2025-10-28T10:00:00Z", true).await;
        lupa.promote("a", "a_d1").await.unwrap();
        lupa.resolve(&live("a")).await.unwrap();
        lupa.resolve(&live("a").deployment_id("a_d1")).await.unwrap();
        let deleted = lupa.delete_project("a").await.unwrap();
        assert!(!deleted.cache_pending);
        assert_eq!(lupa.get_project("a").await.unwrap_err().code(), ErrorCode::ProjectNotFound);
        assert_eq!(lupa.get_deployment("a_d1").await.unwrap_err().code(), ErrorCode::DeploymentNotFound);
        assert_eq!(lupa.resolve(&live("a")).await.unwrap_err().code(), ErrorCode::ProjectNotFound, "{name}");
        let probe = lupa.cache_probe().unwrap();
        for key in
            ["project:a:exists", "project:a:production_deployment", "deployment:a_d1:project", "deployment:a_d1:info"]
        {
            assert_eq!(probe.get(key).await.unwrap(), None, "{name}: {key} survived the deletion");
        }
        // The ids are free again, and the new project starts clean.
        project(&lupa, "a").await;
        deployment(&lupa, "a", "a_d1", "2025-10-28T10:00:00Z", true).await;
        assert!(lupa.history("a", None, None).await.unwrap().items.is_empty(), "{name}");
        assert_eq!(lupa.resolve(&live("a")).await.unwrap_err().code(), ErrorCode::NoProductionDeployment);
        assert_eq!(lupa.delete_project("nope").await.unwrap_err().code(), ErrorCode::ProjectNotFound);
        finish(lupa).await;
    }
}

#[tokio::test]
async fn rollback_edges_and_history() {
    for (name, lupa) in stores().await {
        project(&lupa, "p").await;
        assert_eq!(lupa.rollback("p").await.unwrap_err().code(), ErrorCode::NoRollbackTarget);
        for (id, minute) in [("v1", 1), ("v2", 2), ("v3", 3)] {
            deployment(&lupa, "p", id, &format!("2025-10-28T10:0{minute}:00Z"), true).await;
        }
        lupa.promote("p", "v1").await.unwrap();
        lupa.promote("p", "v2").await.unwrap();
        // Two rollbacks in a row swap back and forth.
        assert_eq!(lupa.rollback("p").await.unwrap().deployment.id.as_str(), "v1", "{name}");
        assert_eq!(lupa.rollback("p").await.unwrap().deployment.id.as_str(), "v2", "{name}");
        // Without a production now, rollback brings back the last one that was.
        lupa.set_environment("p", "v2", Environment::Staging).await.unwrap();
        assert_eq!(lupa.rollback("p").await.unwrap().deployment.id.as_str(), "v2", "{name}");
        // A target that no longer exists is no target.
        lupa.promote("p", "v3").await.unwrap();
        lupa.delete_deployment("p", "v2").await.unwrap();
        assert_eq!(lupa.rollback("p").await.unwrap_err().code(), ErrorCode::NoRollbackTarget, "{name}");

        let history = lupa.history("p", None, None).await.unwrap().items;
        let seqs: Vec<i64> = history.iter().map(|e| e.seq).collect();
        let mut expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        expected.reverse();
        assert_eq!(seqs, expected, "{name}: newest first, no gaps");
        let page = lupa.history("p", Some(3), None).await.unwrap();
        let rest = lupa.history("p", Some(100), page.next_cursor.as_deref()).await.unwrap();
        assert_eq!(page.items.len() + rest.items.len(), history.len(), "{name}");
        assert_eq!(history[0].deployment_id.as_str(), "v3");
        assert_eq!((history[0].from, history[0].to), (Environment::Staging, Environment::Production));
        finish(lupa).await;
    }
}

#[tokio::test]
async fn promote_when_ready_and_its_flag() {
    for (name, lupa) in stores().await {
        project(&lupa, "p").await;
        deployment(&lupa, "p", "v1", "2025-10-28T10:01:00Z", true).await;
        lupa.promote("p", "v1").await.unwrap();
        let created = lupa
            .create_deployment(CreateDeployment {
                project: "p".into(),
                id: Some("v2".into()),
                snapshot: "s".into(),
                environment: Environment::Production,
                created_at: None,
            })
            .await
            .unwrap();
        assert!(created.promote_when_ready && created.environment == Environment::Staging, "{name}");
        // Cleared by set_environment(staging): v2 then stays staging when ready.
        let cleared = lupa.set_environment("p", "v2", Environment::Staging).await.unwrap();
        assert!(!cleared.promote_when_ready, "{name}");
        lupa.set_status("v2", FinalStatus::Ready, None).await.unwrap();
        assert_eq!(lupa.resolve(&live("p")).await.unwrap().deployment.unwrap().as_str(), "v1", "{name}");
        // Failure keeps the message.
        deployment(&lupa, "p", "v3", "2025-10-28T10:03:00Z", false).await;
        let failed = lupa.set_status("v3", FinalStatus::Failed, Some("parse error in doc 7".into())).await.unwrap();
        assert_eq!(failed.failure_message.as_deref(), Some("parse error in doc 7"));
        let e = lupa.set_status("v3", FinalStatus::Ready, None).await.unwrap_err();
        assert_eq!(e.message(), "Cannot change status from failed to ready");
        assert_eq!(
            lupa.set_status("ghost", FinalStatus::Ready, None).await.unwrap_err().code(),
            ErrorCode::DeploymentNotFound
        );
        finish(lupa).await;
    }
}

#[tokio::test]
async fn health_and_sources() {
    for (name, lupa) in stores().await {
        let h = lupa.health().await;
        assert_eq!(
            (h.store, h.cache, h.pending_cache_updates),
            (ComponentHealth::Ok, ComponentHealth::Ok, Some(0)),
            "{name}"
        );
        project(&lupa, "p").await;
        let no_route = ResolveRequest::new("p", Caller::Internal(None)).requires_deployment(false);
        assert_eq!(lupa.resolve(&no_route).await.unwrap().source, Source::Store);
        assert_eq!(lupa.resolve(&no_route).await.unwrap().source, Source::Local, "{name}");
        // At most one: a channel that connects meanwhile flushes the tier.
        assert!(lupa.health().await.local_projects.is_some_and(|n| n <= 1), "{name}");
        finish(lupa).await;
    }
    let none = Lupa::open(Config::new("memory://", "none")).await.unwrap();
    assert_eq!(none.health().await.cache, ComponentHealth::Disabled);
    assert!(none.cache_probe().is_none());
}

/// Migrations are applied on open, once, however many handles open a new
/// schema or file at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_migrate_once() {
    let dir = std::env::temp_dir().join(support::unique("lupa_open"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut configs = vec![Config::new(format!("sqlite://{}", dir.join("lupa.db").display()), "none")];
    if let Some(db) = support::postgres() {
        let mut c = Config::new(db, "none");
        c.schema = support::unique("lupa_open").to_lowercase();
        configs.push(c);
    }
    for config in configs {
        let opens: Vec<_> = (0..6).map(|_| tokio::spawn(Lupa::open(config.clone()))).collect();
        let mut handles = Vec::new();
        for o in opens {
            handles.push(o.await.unwrap().expect("every concurrent open succeeds"));
        }
        project(&handles[0], "p").await;
        for h in &handles {
            assert_eq!(h.get_project("p").await.unwrap().name, "p", "all handles see one set of tables");
        }
        // Opening again later is a no-op.
        let again = Lupa::open(config.clone()).await.unwrap();
        assert_eq!(again.list_projects(None, None).await.unwrap().items.len(), 1);
        again.drop_storage().await.unwrap();
        for h in handles {
            h.close().await;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
