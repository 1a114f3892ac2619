//! The GA4GH TES API from inside a workspace, on the real node: a researcher gets a token at
//! the portal, and py-tes (a third-party TES client, in her environment's image) submits,
//! reads, lists and cancels a task through the gateway's TES port; the task is an AnalysisTask
//! in her name. Only the workspaces of multi-site permits reach that port (packets, with the
//! canary beside each refusal), and nothing else of the gateway; a token dies with its session.

use anyhow::{Context, Result, bail, ensure};
use haven_e2e::{kubectl, kubectl_ok, kubectl_with_input, unique_name};
use haven_e2e_nodes::{
    Browser, GATEWAY_DOMAIN, GATEWAY_PORT, IdpEnv, data_root, permit_and_workspace_with, python_tes_image,
    testenv_image,
};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

/// Where workspaces reach the TES API (the chart's Service; the test certificate names it).
const TES_URL: &str = "https://haven-gateway-tes.haven-gateway.svc:8444";

/// Runs python3 in a workspace's environment (as the cluster admin: `exec` is an admin's tool
/// here, never a researcher's), with the cluster CA trusted, and returns its last JSON line.
fn python(namespace: &str, script: &str, args: &[&str]) -> Result<Value> {
    let mut command = vec![
        "-n",
        namespace,
        "exec",
        "workspace-0",
        "--",
        "env",
        "REQUESTS_CA_BUNDLE=/home/ca.pem",
        "python3",
        "-c",
        script,
    ];
    command.extend_from_slice(args);
    let output = kubectl(&command)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()) {
        Some(line) => Ok(line),
        None => bail!("python in {namespace} printed no result: {}", String::from_utf8_lossy(&output.stderr)),
    }
}

/// Puts the cluster CA into the environment's home (as the researcher would save it).
fn trust_cluster_ca(namespace: &str, ca_pem: &[u8]) -> Result<()> {
    let args = ["-n", namespace, "exec", "-i", "workspace-0", "--", "sh", "-c", "cat > /home/ca.pem"];
    let output = kubectl_with_input(&args, &String::from_utf8_lossy(ca_pem))?;
    ensure!(output.status.success(), "writing the CA: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

/// A researcher's whole TES session with py-tes: service-info, a task submitted, read in full,
/// listed, cancelled and read again, and a task Haven cannot run (outputs to a URL) refused.
const PY_TES_SESSION: &str = r#"
import json, sys, requests, tes
url, token, image = sys.argv[1:4]
client = tes.HTTPClient(url, token=token, timeout=30)
info = client.get_service_info()
task = tes.Task(
    name="count-by-answer", description="counts per answer, for a pooled estimate",
    executors=[tes.Executor(image=image, command=["sh", "-c", "echo 1 > /outputs/n.txt"], env={"LEVEL": "0.95"})],
    inputs=[tes.Input(path="/home/inputs/params.json", content='{"alpha": 0.05}')],
    resources=tes.Resources(cpu_cores=1, ram_gb=1, backend_parameters={"haven.io/sites": "north"}),
    tags={"study": "tes-e2e"})
task_id = client.create_task(task)
full = client.get_task(task_id, view="FULL")
listed = client.list_tasks(view="BASIC")
client.cancel_task(task_id)
after = client.get_task(task_id, view="MINIMAL")
try:
    client.create_task(tes.Task(executors=[tes.Executor(image=image, command=["true"])],
                                outputs=[tes.Output(url="s3://bucket/out", path="/outputs/out")]))
    refused = None
except requests.HTTPError as error:
    refused = [error.response.status_code, error.response.json()]
print(json.dumps({
    "type": info.type, "id": task_id, "state": full.state, "name": full.name,
    "input": [full.inputs[0].path, full.inputs[0].content], "sites": full.resources.backend_parameters,
    "listed": [t.id for t in listed.tasks], "after": after.state, "refused": refused}))
"#;

/// Whether a TCP connection to host:port opens within 5 s, from inside the environment.
const CONNECT: &str = r#"
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=5).close()
    print(json.dumps({"open": True}))
except OSError as error:
    print(json.dumps({"open": False, "error": str(error)}))
"#;

fn connects(namespace: &str, host: &str, port: u16) -> Result<bool> {
    let answer = python(namespace, CONNECT, &[host, &port.to_string()])?;
    answer["open"].as_bool().context("no answer")
}

/// The TES token from the portal's page, as a person copies it.
fn token_on(page: &str) -> Option<String> {
    let start = page.find("<code id=\"tes-token\"")?;
    let rest = &page[start..];
    let text = &rest[rest.find('>')? + 1..];
    Some(text[..text.find('<')?].to_owned())
}

fn portal(path: &str) -> Result<Url> {
    Ok(Url::parse(&format!("https://{GATEWAY_DOMAIN}:{GATEWAY_PORT}{path}"))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researchers_tes_client_submits_tasks_from_her_multi_site_workspace_and_nowhere_else() -> Result<()>
{
    let idp = IdpEnv::load()?;
    let (ada, ben) = (idp.user("ada")?, idp.user("ben")?);
    let (multi, single) = (unique_name("tes-m"), unique_name("tes-s"));
    let image = python_tes_image();
    let multi_site = json!({"multiSite": {"id": format!("EHDS-MS-{multi}"), "requestingSite": "here", "sites": ["north"]}});
    permit_and_workspace_with(
        &multi,
        &[&ada.email, &ben.email],
        "checker@example.org",
        json!({}),
        multi_site,
        &image,
    )?;
    permit_and_workspace_with(&single, &[&ada.email], "checker@example.org", json!({}), json!({}), &image)?;
    let (multi_ns, single_ns) = (format!("ws-{multi}"), format!("ws-{single}"));
    for namespace in [&multi_ns, &single_ns] {
        trust_cluster_ca(namespace, &idp.ca_pem)?;
    }

    // Ada (password and one-time code) gets a token for the multi-site workspace at the portal;
    // none for the other (its tasks would go nowhere); ben, password only on a tier that needs
    // a second factor, gets none either.
    let browser = Browser::new(&idp, &[])?;
    let page = browser.visit(&idp, ada, portal(&format!("/_haven/tes/{multi}"))?).await?;
    ensure!(page.status() == StatusCode::OK, "ada's token page: {}", page.status());
    let page = page.text().await?;
    let token = token_on(&page).context("no token on the page")?;
    ensure!(page.contains(TES_URL), "the page names the TES address: {page}");
    let other = browser.client.get(portal(&format!("/_haven/tes/{single}"))?).send().await?;
    let (status, text) = (other.status(), other.text().await?);
    ensure!(
        status == StatusCode::FORBIDDEN && text.contains("not part of a multi-site permit"),
        "{status}: {text}"
    );
    let ben_browser = Browser::new(&idp, &[])?;
    let refused = ben_browser.visit(&idp, ben, portal(&format!("/_haven/tes/{multi}"))?).await?;
    ensure!(refused.status() == StatusCode::FORBIDDEN, "ben's token page: {}", refused.status());

    // py-tes in ada's environment: the whole session, through the TES port.
    let session = python(&multi_ns, PY_TES_SESSION, &[TES_URL, &token, &testenv_image()])?;
    ensure!(session["type"]["artifact"] == "tes" && session["type"]["version"] == "1.1.0", "{session}");
    let id = session["id"].as_str().context("no task id")?.to_owned();
    ensure!(session["state"] == "QUEUED" && session["name"] == "count-by-answer", "{session}");
    ensure!(session["input"] == json!(["/home/inputs/params.json", "{\"alpha\": 0.05}"]), "{session}");
    ensure!(session["sites"]["haven.io/sites"] == "north", "{session}");
    ensure!(session["listed"].as_array().is_some_and(|l| l.contains(&json!(id))), "{session}");
    ensure!(session["after"] == "CANCELING", "a cancel on its way: {session}");
    let refusal = &session["refused"];
    ensure!(
        refusal[0] == 400 && refusal[1]["msg"].as_str().is_some_and(|m| m.starts_with("outputs:")),
        "{session}"
    );

    // The task is an AnalysisTask in ada's name, exactly as submitted, and cancelled.
    let task: Value =
        serde_json::from_str(&kubectl_ok(&["-n", &multi_ns, "get", "analysistask", &id, "-o", "json"])?)?;
    let spec = &task["spec"];
    ensure!(spec["requestedBy"] == ada.email.as_str(), "requestedBy: {spec}");
    ensure!(
        spec["executors"][0]["image"] == testenv_image().as_str() && spec["sites"] == json!(["north"]),
        "{spec}"
    );
    ensure!(spec["inputs"] == json!([{"path": "params.json", "content": "{\"alpha\": 0.05}"}]), "{spec}");
    ensure!(spec["cancelled"] == true, "{spec}");
    ensure!(task["metadata"]["annotations"]["haven.io/tes-name"] == "count-by-answer", "{task}");

    // Packets: the multi-site workspace reaches the TES port and nothing else of the gateway
    // (its browser port, on the same pod address); the other workspace not even the TES port.
    let gateway_ip = kubectl_ok(&[
        "-n",
        "haven-gateway",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=haven-gateway",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ])?;
    ensure!(
        connects(&multi_ns, &gateway_ip, 8444)?,
        "canary: the multi-site workspace cannot reach the TES port"
    );
    ensure!(
        !connects(&multi_ns, &gateway_ip, 8443)?,
        "the multi-site workspace reaches the gateway's browser port"
    );
    ensure!(
        !connects(&single_ns, &gateway_ip, 8444)?,
        "a workspace without a multi-site permit reaches the TES port"
    );

    // Admission: only a holder of submit-for (the gateway's account) writes a task in another's
    // name; ada cannot write one in ben's.
    let task_for = |who: &str| {
        json!({"apiVersion": "haven.io/v1alpha1", "kind": "AnalysisTask",
        "metadata": {"generateName": "as-", "namespace": multi_ns},
        "spec": {"requestedBy": who, "executors": [{"image": testenv_image(), "command": ["true"]}]}})
        .to_string()
    };
    let as_ada = kubectl_with_input(&["--as", &ada.email, "create", "-f", "-"], &task_for(&ben.email))?;
    let said = String::from_utf8_lossy(&as_ada.stderr);
    ensure!(
        !as_ada.status.success() && said.contains("spec.requestedBy must be the user creating the task"),
        "{said}"
    );
    let gateway = "system:serviceaccount:haven-gateway:haven-gateway";
    let as_gateway = kubectl_with_input(&["--as", gateway, "create", "-f", "-"], &task_for(&ben.email))?;
    ensure!(
        as_gateway.status.success(),
        "the gateway's account: {}",
        String::from_utf8_lossy(&as_gateway.stderr)
    );
    // And only in the namespaces of multi-site workspaces, where the operator binds its role.
    let elsewhere = task_for(&ada.email).replace(&format!("\"{multi_ns}\""), &format!("\"{single_ns}\""));
    let outside = kubectl_with_input(&["--as", gateway, "create", "-f", "-"], &elsewhere)?;
    let said = String::from_utf8_lossy(&outside.stderr);
    ensure!(
        !outside.status.success() && said.contains("forbidden"),
        "the gateway wrote a task in {single_ns}: {said}"
    );

    // Bad tokens, and a token whose session logged out, are refused.
    let bad = python(&multi_ns, PY_TES_LIST, &[TES_URL, "not-a-token"])?;
    ensure!(bad["status"] == 401, "a forged token: {bad}");
    let logout = browser
        .client
        .post(portal("/_haven/logout")?)
        .header("origin", portal("")?.origin().ascii_serialization())
        .send()
        .await?;
    ensure!(logout.status().is_redirection() || logout.status().is_success(), "logout: {}", logout.status());
    let ended = python(&multi_ns, PY_TES_LIST, &[TES_URL, &token])?;
    ensure!(ended["status"] == 401, "the token after its session logged out: {ended}");

    // The evidence: the token, the submission and the cancel, in the chained access log.
    let path = data_root()?.join("audit/access.log");
    let report = haven_data::audit::verify(&path).with_context(|| format!("verifying {}", path.display()))?;
    ensure!(report.records > 0);
    let records: Vec<Value> =
        std::fs::read_to_string(&path)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let has = |action: &str, check: &dyn Fn(&Value) -> bool| {
        records
            .iter()
            .any(|r| r["actor"] == ada.email.as_str() && r["action"] == action && check(&r["detail"]))
    };
    ensure!(has("tes-token", &|_| true), "the token's record");
    ensure!(
        has("task-submitted", &|d| d["task"] == id.as_str() && d["via"] == "tes"),
        "the submission's record"
    );
    ensure!(has("task-cancelled", &|d| d["task"] == id.as_str()), "the cancel's record");
    ensure!(
        records.iter().any(|r| r["action"] == "refused"
            && r["detail"]["status"] == 401
            && r["detail"]["path"] == "/ga4gh/tes/v1/tasks"),
        "the refused tokens"
    );

    for name in [&multi, &single] {
        kubectl_ok(&["delete", "workspace", name, "--wait=false"])?;
    }
    Ok(())
}

/// One list call with a given token: its HTTP status.
const PY_TES_LIST: &str = r#"
import json, sys, requests, tes
url, token = sys.argv[1:3]
try:
    tes.HTTPClient(url, token=token, timeout=30).list_tasks()
    print(json.dumps({"status": 200}))
except requests.HTTPError as error:
    print(json.dumps({"status": error.response.status_code}))
"#;
