//! A host's subscriber sees a span for every operation, with the project
//! and deployment ids as fields and the error code of a failure, and never
//! an API key or a password.

use std::sync::{Arc, Mutex};

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, FinalStatus, KeyEnvironment, Lupa, NewProject, ResolveRequest,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const LIVE_KEY: &str = "lupa_sk_live_SECRETkeySECRETkeySECRETkey1";

/// Every span as `name field=value ...`, with the fields recorded later
/// appended when the span closes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(attrs.metadata().name().to_owned());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(fields) = span.extensions().get::<Fields>()
        {
            self.0.lock().unwrap().push(fields.0.clone());
        }
    }
}

#[test]
fn every_operation_has_a_span_with_its_ids_and_no_secret() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let lupa = Lupa::open(Config::new("sqlite::memory:", "memory://")).await.unwrap();
            lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "P".into() })
                .await
                .unwrap();
            lupa.create_deployment(CreateDeployment {
                project: "p1".into(),
                id: Some("d1".into()),
                snapshot: "s".into(),
                environment: Environment::Staging,
                created_at: None,
            })
            .await
            .unwrap();
            lupa.set_status("d1", FinalStatus::Ready, None).await.unwrap();
            lupa.promote("p1", "d1").await.unwrap();
            let live = ResolveRequest::new("p1", Caller::ApiKey(LIVE_KEY.into()));
            assert_eq!(lupa.resolve(&live).await.unwrap().deployment.unwrap().as_str(), "d1");
            let test = ResolveRequest::new("p1", Caller::KeyEnvironment(KeyEnvironment::Test));
            lupa.resolve(&test).await.unwrap_err();
            lupa.rollback("p1").await.unwrap_err();
            lupa.history("p1", None, None).await.unwrap();
            lupa.close().await;
        });
    });
    let spans = recorder.0.lock().unwrap().clone();
    let find = |prefix: &str| {
        spans.iter().find(|s| s.starts_with(prefix)).unwrap_or_else(|| panic!("no span {prefix} in {spans:#?}")).clone()
    };
    assert!(find("lupa.create_project").contains("project=p1"));
    let created = find("lupa.create_deployment");
    assert!(created.contains("project=p1") && created.contains("deployment=d1"), "{created}");
    let status = find("lupa.set_status");
    assert!(status.contains("deployment=d1") && status.contains("project=p1"), "{status}");
    let promote = find("lupa.promote");
    assert!(promote.contains("project=p1") && promote.contains("deployment=d1"), "{promote}");
    assert!(!promote.contains("error="), "a promotion that succeeded records no error: {promote}");
    let resolved = spans.iter().find(|s| s.starts_with("lupa.resolve") && s.contains("deployment=d1"));
    let resolved = resolved.unwrap_or_else(|| panic!("no resolution of d1 in {spans:#?}"));
    assert!(resolved.contains("project=p1") && resolved.contains("source=store"), "{resolved}");
    assert!(resolved.contains("target=production"), "{resolved}");
    let failed = spans.iter().find(|s| s.starts_with("lupa.resolve") && s.contains("error="));
    assert!(failed.is_some_and(|s| s.contains("error=NO_STAGING_DEPLOYMENT")), "{spans:#?}");
    assert!(find("lupa.rollback").contains("error=NO_ROLLBACK_TARGET"));
    assert!(find("lupa.history").contains("project=p1"));
    for s in &spans {
        assert!(!s.contains("SECRET") && !s.contains("lupa_sk_"), "a span shows the API key: {s}");
    }
}
