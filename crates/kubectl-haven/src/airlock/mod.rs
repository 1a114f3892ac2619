//! `kubectl haven airlock list|show|approve|reject|cancel`.

mod list;
mod review;
mod show;
mod wait;

use haven_api::{
    AirlockRequest,
    airlock::{CHECK_REPORT_KEY, FileReport, check_report_name},
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::ListParams};

use crate::{
    cli::AirlockCommand,
    connect::{Connect, Session},
    error::{self, Target},
    format::{self, OutputFormat},
};

/// How an AirlockRequest is named in messages, as kubectl names the resource.
pub const KIND: &str = "airlockrequest";

pub async fn run(connect: &Connect, command: AirlockCommand) -> anyhow::Result<()> {
    let session = connect.session().await?;
    match command {
        AirlockCommand::List { all_namespaces, output } => {
            list(&session, all_namespaces, output.format).await
        }
        AirlockCommand::Show { name, output } => show(&session, &name, output.format).await,
        AirlockCommand::Approve(args) => review::review(&session, review::Verdict::Approve, args).await,
        AirlockCommand::Reject(args) => review::review(&session, review::Verdict::Reject, args).await,
        AirlockCommand::Cancel { name, wait } => review::cancel(&session, &name, &wait).await,
    }
}

async fn list(session: &Session, all_namespaces: bool, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let api: Api<AirlockRequest> = if all_namespaces {
        Api::all(session.client.clone())
    } else {
        Api::namespaced(session.client.clone(), &session.namespace)
    };
    let mut requests = api.list(&ListParams::default()).await.map_err(|e| error::listing(KIND, e))?.items;
    requests.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    if format::print_structured(&format::list_of(&requests), format)? {
        return Ok(());
    }
    if requests.is_empty() {
        match all_namespaces {
            true => eprintln!("No airlock requests found."),
            false => eprintln!("No airlock requests found in namespace {}.", session.namespace),
        }
        return Ok(());
    }
    let wide = format == Some(OutputFormat::Wide);
    print!("{}", list::render(&requests, all_namespaces, wide, chrono::Utc::now()));
    Ok(())
}

async fn show(session: &Session, name: &str, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let mut request = get(session, name).await?;
    let detailed = checkers_report(session, &request).await;
    if let (Some(files), Some(status)) = (&detailed, request.status.as_mut()) {
        status.files.clone_from(files);
    }
    if !format::print_structured(&request, format)? {
        print!("{}", show::render(&request, format == Some(OutputFormat::Wide), chrono::Utc::now()));
        println!(
            "{}",
            match detailed {
                Some(_) => "Details:       from the output checkers' report",
                None =>
                    "Details:       only output checkers read what the checks found (the status names outcomes only)",
            }
        );
    }
    Ok(())
}

/// The request's check report with every detail, when this user may read it (output checkers);
/// `None` for anyone else, or before the checks ran.
async fn checkers_report(session: &Session, request: &AirlockRequest) -> Option<Vec<FileReport>> {
    let uid = request.metadata.uid.as_deref()?;
    let config_maps: Api<ConfigMap> = Api::namespaced(session.client.clone(), &session.namespace);
    let report = config_maps.get_opt(&check_report_name(uid)).await.ok()??;
    serde_json::from_str(report.data?.get(CHECK_REPORT_KEY)?).ok()
}

/// The request `name` in the session's namespace, or "airlockrequest NAME not found in namespace NS".
pub async fn get(session: &Session, name: &str) -> anyhow::Result<AirlockRequest> {
    api(session)
        .get(name)
        .await
        .map_err(|e| error::about(Target::namespaced(KIND, name, &session.namespace), e))
}

pub fn api(session: &Session) -> Api<AirlockRequest> {
    Api::namespaced(session.client.clone(), &session.namespace)
}
