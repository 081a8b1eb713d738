//! A project from creation to promotion to rollback, resolved at each step
//! the way the search API's middleware does: no servers needed (an
//! in-memory SQLite store and an in-memory cache).
//!
//! Run: `cargo run -p lupa-core --example walkthrough`

use lupa_core::{Caller, Config, CreateDeployment, Environment, FinalStatus, Lupa, NewProject, ResolveRequest};

const PROJECT: &str = "abc1234567";

async fn show_resolution(lupa: &Lupa, label: &str, request: ResolveRequest) {
    match lupa.resolve(&request).await {
        Ok(r) => println!(
            "    {label:<36} -> {} (from the {:?})",
            r.deployment.map_or_else(|| "no deployment".to_string(), |d| d.to_string()),
            r.source
        ),
        Err(e) => println!("    {label:<36} -> {} {}: {}", e.http_status(), e.code(), e.message()),
    }
}

async fn show_all(lupa: &Lupa) {
    let live = Caller::ApiKey("lupa_sk_live_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ".into());
    let test = Caller::ApiKey("lupa_pk_test_Aa9Bb8Cc7Dd6Ee5Ff4Gg3Hh2Ii1Jj".into());
    show_resolution(lupa, "live key", ResolveRequest::new(PROJECT, live.clone())).await;
    show_resolution(lupa, "test key", ResolveRequest::new(PROJECT, test)).await;
    show_resolution(
        lupa,
        "live key + Deployment-Id stg9876543",
        ResolveRequest::new(PROJECT, live).deployment_id("stg9876543"),
    )
    .await;
}

async fn deploy(lupa: &Lupa, id: &str, minute: u32) -> lupa_core::Result<()> {
    lupa.create_deployment(CreateDeployment {
        project: PROJECT.into(),
        id: Some(id.into()),
        snapshot: "snp2345678".into(),
        environment: Environment::Staging,
        created_at: Some(format!("2025-10-28T10:{minute:02}:00Z")),
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> lupa_core::Result<()> {
    let lupa = Lupa::open(Config::new("sqlite::memory:", "memory://")).await?;
    println!("Lupa core walkthrough (store: in-memory SQLite, cache: in-memory)\n");

    println!("1. Create project {PROJECT}");
    lupa.create_project(NewProject { id: Some(PROJECT.into()), org_id: "org_1".into(), name: "Docs".into() }).await?;
    show_all(&lupa).await;

    println!("\n2. Create deployment def4567890: it starts processing, in staging");
    deploy(&lupa, "def4567890", 1).await?;
    show_all(&lupa).await;

    println!("\n3. Processing finishes: def4567890 is ready (test keys reach the newest ready staging)");
    lupa.set_status("def4567890", FinalStatus::Ready, None).await?;
    show_all(&lupa).await;

    println!("\n4. Promote def4567890 to production (live keys reach it now)");
    let p = lupa.promote(PROJECT, "def4567890").await?;
    println!("    promoted {} -> {}", p.deployment.id, p.deployment.environment);
    show_all(&lupa).await;

    println!("\n5. A second version, stg9876543, is built and tested in staging");
    deploy(&lupa, "stg9876543", 2).await?;
    lupa.set_status("stg9876543", FinalStatus::Ready, None).await?;
    show_all(&lupa).await;

    println!("\n6. Promote stg9876543: the old production is demoted to staging atomically");
    let p = lupa.promote(PROJECT, "stg9876543").await?;
    println!(
        "    promoted {}, demoted {}",
        p.deployment.id,
        p.demoted.as_ref().map_or("nothing".into(), |d| d.to_string())
    );
    show_all(&lupa).await;

    println!("\n7. A processing deployment cannot be promoted");
    deploy(&lupa, "wip0000001", 3).await?;
    if let Err(e) = lupa.promote(PROJECT, "wip0000001").await {
        println!("    {} {}: {}", e.http_status(), e.code(), e.message());
    }

    println!("\n8. Roll back: the previous production serves again");
    let p = lupa.rollback(PROJECT).await?;
    println!("    rolled back to {}", p.deployment.id);
    show_all(&lupa).await;
    let live = Caller::ApiKey("lupa_sk_live_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ".into());
    show_resolution(&lupa, "live key, asked again", ResolveRequest::new(PROJECT, live)).await;

    println!("\n9. The history of environment changes, newest first");
    for e in lupa.history(PROJECT, None, None).await?.items {
        println!("    #{:<2} {:<11} {} -> {}", e.seq, e.deployment_id, e.from, e.to);
    }

    lupa.close().await;
    println!("\nDone.");
    Ok(())
}
