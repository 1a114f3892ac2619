//! The sites are joined as run-federation.sh set them up: each site's `haven federation`
//! reaches the hub's listener, trusting the hub's CA, with a client certificate from its own
//! CA that the hub's Site for it names; the hub pulls from itself the same way.

use anyhow::{Context, Result};
use futures::future::try_join_all;
use haven_e2e_federation::{DEADLINE, Site, eventually};
use kube::Api;

#[tokio::test(flavor = "multi_thread")]
async fn every_site_pulls_from_the_hub_over_mutual_tls_with_its_own_certificate() -> Result<()> {
    let sites = Site::all()?;
    // An earlier test's processes may have connected already: only a contact from these counts.
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let processes = sites.iter().map(|site| site.federation_with(&["--pull-interval-ms=200"]));
    let processes = processes.collect::<Result<Vec<_>>>()?;
    let connected = sites.iter().zip(&processes).map(|(site, process)| async move {
        let hub: Api<haven_api::Site> = Api::all(site.client().await?);
        let seen = eventually(DEADLINE, "the Site hub Connected", || async {
            let status = hub.get("hub").await?.status.unwrap_or_default();
            let condition = status.conditions.into_iter().find(|c| c.type_ == "Connected");
            let contact = status.last_contact.filter(|at| *at >= started);
            Ok(condition.filter(|c| c.status == "True").zip(contact))
        })
        .await;
        let (condition, contact) = seen.with_context(|| {
            format!("at {} (log {}):\n{}", site.name, process.log().display(), process.log_tail(20))
        })?;
        println!("{}: hub Connected ({}) at {contact}", site.name, condition.message);
        anyhow::Ok(())
    });
    try_join_all(connected).await?;
    Ok(())
}
