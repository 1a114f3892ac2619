//! The GA4GH TES v1.1 API for a workspace's own TES clients (py-tes; not Nextflow, whose
//! executor declares outputs by URL): tasks submitted here become AnalysisTasks in the
//! workspace's namespace, which the federation sends to each data site of its multi-site permit.
//!
//! It listens on a port of its own, which only the workspaces of multi-site permits may reach
//! (one egress rule). A person gets a bearer token for one workspace at the portal
//! (`/_haven/tes/<workspace>`); every request is then judged as a visit is (the Workspace names
//! them, it is open, its permit Active, a second factor if the tier wants one, RBAC `connect`)
//! and asked of RBAC for the task verb itself, as that person. The gateway then writes the task
//! in its own name with `spec.requestedBy` set to the person, which admission allows only to
//! holders of the `submit-for` verb on analysistasks: the gateway, through the role the
//! operator binds to it in multi-site workspace namespaces only.

mod token;
pub mod wire;

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use chrono::Utc;
use haven_api::{AnalysisTask, validation::workspace_namespace};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde::Serialize;
use serde_json::json;

pub use token::{BadToken, TesToken};
use wire::{FieldError, View};

use crate::{
    authz::{Answer, workspace_review},
    evidence::{Origin, RefusedRequest},
    gateway::Gateway,
    pages,
    proxy::Body,
    session::{Session, random_token},
};

/// Where TES clients find the API: `<url>/ga4gh/tes/v1/...`.
pub const BASE_PATH: &str = "/ga4gh/tes/v1";
/// The largest task accepted (inline inputs included); the API server stores less.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// The most tasks one list answers with.
const MAX_PAGE: u32 = 256;

/// The TES API's settings.
#[derive(Clone)]
pub struct TesService {
    /// The API's address as the workspaces reach it (shown with each token).
    pub url: String,
    /// How long a token is good for (never past its session's end).
    pub token_lifetime: chrono::Duration,
    pub client: Client,
}

impl std::fmt::Debug for TesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesService").field("url", &self.url).finish_non_exhaustive()
    }
}

/// A refused TES request: its status, a stable kind for metrics and Events, the message.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Refused {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }
}

impl From<FieldError> for Refused {
    fn from(error: FieldError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidTask", error.to_string())
    }
}

/// One TES call, parsed from its method and path (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    ServiceInfo,
    List,
    Create,
    Get(String),
    Cancel(String),
}

impl Call {
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix(BASE_PATH)?;
        let call = match (method, rest) {
            (&Method::GET, "/service-info") => Self::ServiceInfo,
            (&Method::GET, "/tasks") => Self::List,
            (&Method::POST, "/tasks") => Self::Create,
            (&Method::POST, task) => {
                Self::Cancel(task.strip_prefix("/tasks/")?.strip_suffix(":cancel")?.to_owned())
            }
            (&Method::GET, task) => Self::Get(task.strip_prefix("/tasks/")?.to_owned()),
            _ => return None,
        };
        match &call {
            Self::Get(id) | Self::Cancel(id) if !is_task_id(id) => None,
            _ => Some(call),
        }
    }

    /// The RBAC verb on analysistasks the person must hold.
    fn verb(&self) -> &'static str {
        match self {
            Self::ServiceInfo => "get",
            Self::List => "list",
            Self::Create => "create",
            Self::Get(_) => "get",
            Self::Cancel(_) => "update",
        }
    }
}

/// An AnalysisTask name (a DNS label): anything else names no task.
fn is_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = json_response(status, &json!({"msg": message, "status_code": status.as_u16()}));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

impl Gateway {
    /// One request to the TES port.
    pub async fn tes(self: Arc<Self>, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
        let Some(service) = self.tes.clone() else {
            return error_response(StatusCode::NOT_FOUND, "the TES API is not enabled here");
        };
        let origin =
            Origin { source: peer.ip().to_string(), user_agent: header_text(&request, header::USER_AGENT) };
        let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
        let refused =
            |token: Option<&TesToken>, why: Refused| self.tes_refused(token, &method, &path, &origin, why);
        let Some(call) = Call::parse(request.method(), request.uri().path()) else {
            return error_response(
                StatusCode::NOT_FOUND,
                &format!("no TES call at {}", request.uri().path()),
            );
        };
        if call == Call::ServiceInfo {
            let info = wire::service_info(&self.site.portal_origin(), env!("CARGO_PKG_VERSION"));
            return json_response(StatusCode::OK, &info);
        }
        let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = match token::open(&self.sealer, authorization, Utc::now()) {
            Ok(token) if self.spent.is_ended(&token.session) => {
                let why = Refused::new(
                    StatusCode::UNAUTHORIZED,
                    "LoggedOut",
                    "the session that issued this token logged out",
                );
                return refused(Some(&token), why);
            }
            Ok(token) => token,
            Err(bad) => {
                let why = Refused::new(StatusCode::UNAUTHORIZED, "NoToken", bad.to_string());
                return refused(None, why);
            }
        };
        let answer = match self.tes_admit(&token, &call).await {
            Ok(()) => self.tes_call(&service, &token, call, request, &origin).await,
            Err(why) => Err(why),
        };
        answer.unwrap_or_else(|why| refused(Some(&token), why))
    }

    /// May the token's holder make this call now? As a visit is judged, then RBAC for the verb.
    async fn tes_admit(&self, token: &TesToken, call: &Call) -> Result<(), Refused> {
        let grant = self
            .authorizer
            .decide(&token.workspace, &token.user, token.mfa)
            .await
            .map_err(|refusal| Refused::new(refusal.status(), refusal.kind(), refusal.shown()))?;
        self.multi_site(&token.workspace, &grant.permit)?;
        let review = workspace_review(&token.user, &token.workspace, "analysistasks", None, call.verb());
        match self.authorizer.ask(&review).await {
            Answer::Allowed => Ok(()),
            Answer::Denied(reason) => Err(Refused::new(
                StatusCode::FORBIDDEN,
                "RbacDenied",
                format!(
                    "the cluster does not allow {} to {} analysis tasks in workspace {}{reason}",
                    token.user,
                    call.verb(),
                    token.workspace
                ),
            )),
            Answer::Unavailable(error) => {
                tracing::warn!(%error, "a TES call's access review could not be asked");
                Err(Refused::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "the access check could not be made; try again",
                ))
            }
        }
    }

    /// Tasks go to the data sites of the workspace's multi-site permit; without one they would
    /// go nowhere.
    fn multi_site(&self, workspace: &str, permit: &str) -> Result<(), Refused> {
        let multi_site = self.directory.permit(permit).is_some_and(|p| p.spec.multi_site.is_some());
        if multi_site {
            return Ok(());
        }
        Err(Refused::new(
            StatusCode::FORBIDDEN,
            "NotMultiSite",
            format!(
                "workspace {workspace}'s permit {permit} is not part of a multi-site permit: there is nowhere to send a task"
            ),
        ))
    }

    async fn tes_call(
        &self,
        service: &TesService,
        token: &TesToken,
        call: Call,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Result<Response<Body>, Refused> {
        let api: Api<AnalysisTask> =
            Api::namespaced(service.client.clone(), &workspace_namespace(&token.workspace));
        let query = query(&request);
        let view = |default| View::parse(query_one(&query, "view"), default);
        match call {
            Call::ServiceInfo => Err(Refused::new(StatusCode::NOT_FOUND, "NoCall", "no such call")),
            Call::List => list(&api, &query, view(View::Minimal)?).await,
            Call::Get(id) => {
                let view = view(View::Minimal)?;
                let task = find(&api, token, &id).await?;
                Ok(json_response(StatusCode::OK, &wire::shown(&task, view)))
            }
            Call::Cancel(id) => self.cancel(&api, token, &id, origin).await,
            Call::Create => {
                let bytes = Limited::new(request.into_body(), MAX_BODY).collect().await.map_err(|_| {
                    Refused::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "InvalidTask",
                        "the task is larger than 2 MiB",
                    )
                })?;
                let bytes = bytes.to_bytes();
                let task: wire::TesTask = serde_json::from_slice(&bytes).map_err(|error| {
                    Refused::new(StatusCode::BAD_REQUEST, "InvalidTask", format!("not a TES task: {error}"))
                })?;
                self.create(&api, token, task, origin).await
            }
        }
    }

    async fn create(
        &self,
        api: &Api<AnalysisTask>,
        token: &TesToken,
        task: wire::TesTask,
        origin: &Origin,
    ) -> Result<Response<Body>, Refused> {
        let submission = wire::submission(task, &token.user)?;
        // Named here, not by the API server, so the record can name it before it exists.
        let id = format!("tes-{}", random_token(6));
        let images: Vec<&str> = submission.spec.executors.iter().map(|e| e.image.as_str()).collect();
        let detail = json!({"task": id, "images": images, "sites": submission.spec.sites,
                            "via": "tes", "source": origin.source, "userAgent": origin.user_agent});
        self.record_first(token, "task-submitted", detail)?;
        let mut task = AnalysisTask::new(&id, submission.spec);
        task.metadata.annotations = (!submission.annotations.is_empty()).then_some(submission.annotations);
        api.create(&PostParams::default(), &task).await.map_err(|e| api_error(&e))?;
        Ok(json_response(StatusCode::OK, &wire::CreatedTask { id }))
    }

    /// TES `:cancel`: only the person who submitted the task (as admission says of kubectl).
    async fn cancel(
        &self,
        api: &Api<AnalysisTask>,
        token: &TesToken,
        id: &str,
        origin: &Origin,
    ) -> Result<Response<Body>, Refused> {
        let task = find(api, token, id).await?;
        if task.spec.requested_by != token.user {
            let message = format!("only {} (who submitted task {id}) can cancel it", task.spec.requested_by);
            return Err(Refused::new(StatusCode::FORBIDDEN, "NotTheRequester", message));
        }
        if !task.spec.cancelled {
            let detail = json!({"task": id, "uid": task.metadata.uid, "via": "tes", "source": origin.source});
            self.record_first(token, "task-cancelled", detail)?;
            let patch = Patch::Merge(json!({"spec": {"cancelled": true}}));
            api.patch(id, &PatchParams::default(), &patch).await.map_err(|e| api_error(&e))?;
        }
        Ok(json_response(StatusCode::OK, &json!({})))
    }

    /// A write is made only once its record is on disk (a refusal by the API server after it
    /// is recorded as a refusal too).
    fn record_first(&self, token: &TesToken, action: &str, detail: serde_json::Value) -> Result<(), Refused> {
        let object = format!("workspace/{}", token.workspace);
        self.evidence.record(&token.user, action, &object, detail).map_err(|error| {
            tracing::error!(%error, action, "the access log did not take a TES call");
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unrecorded",
                "the call could not be recorded, so it was not made",
            )
        })
    }

    fn tes_refused(
        &self,
        token: Option<&TesToken>,
        method: &str,
        path: &str,
        origin: &Origin,
        why: Refused,
    ) -> Response<Body> {
        let refused = RefusedRequest {
            reason: &why.message,
            kind: why.kind,
            method,
            path,
            status: why.status.as_u16(),
            origin,
        };
        self.evidence.refused(token.map(|t| t.user.as_str()), token.map(|t| t.workspace.as_str()), &refused);
        error_response(why.status, &why.message)
    }

    /// `GET /_haven/tes/<workspace>` at the portal: a token for the person's tools in that
    /// workspace, with the API's address (JSON when asked for `application/json`).
    pub(crate) async fn tes_token_page(
        &self,
        session: &Session,
        workspace: &str,
        wants_json: bool,
        origin: &Origin,
    ) -> Response<Body> {
        let Some(service) = self.tes.as_ref() else {
            return self.refusal_page(StatusCode::NOT_FOUND, "The TES API is not enabled here.", None);
        };
        let grant = match self.authorizer.decide(workspace, &session.user, session.mfa).await {
            Ok(grant) => grant,
            Err(refusal) => return self.refusal_page(refusal.status(), &refusal.shown(), None),
        };
        if let Err(why) = self.multi_site(workspace, &grant.permit) {
            return self.refusal_page(why.status, &why.message, None);
        }
        let now = Utc::now();
        let (sealed, minted) = token::mint(
            &self.sealer,
            session,
            workspace,
            now,
            service.token_lifetime,
            self.lifetimes.absolute,
        );
        let detail = json!({"expires": crate::evidence::timestamp(minted.expires), "session": session.id,
                            "source": origin.source, "userAgent": origin.user_agent});
        if let Err(error) =
            self.evidence.record(&session.user, "tes-token", &format!("workspace/{workspace}"), detail)
        {
            tracing::error!(%error, "the access log did not take a token");
            return self.refusal_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The token could not be recorded, so none was issued.",
                None,
            );
        }
        if wants_json {
            return json_response(
                StatusCode::OK,
                &json!({"url": service.url, "token": sealed, "expires": minted.expires}),
            );
        }
        pages::tes_token(workspace, &service.url, &sealed, &crate::evidence::timestamp(minted.expires))
    }
}

fn header_text(request: &Request<Incoming>, name: header::HeaderName) -> String {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn query(request: &Request<Incoming>) -> Vec<(String, String)> {
    let text = request.uri().query().unwrap_or_default();
    url::form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn query_one<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `GET /tasks`: a page of the workspace's tasks (Kubernetes' own paging), filtered by
/// `name_prefix`, `state` and `tag_key`/`tag_value`.
async fn list(
    api: &Api<AnalysisTask>,
    query: &[(String, String)],
    view: View,
) -> Result<Response<Body>, Refused> {
    let page_size = match query_one(query, "page_size").map(str::parse::<u32>) {
        None => 64,
        // Larger pages are served at the largest (TES leaves the bound to the server).
        Some(Ok(size)) if size >= 1 => size.min(MAX_PAGE),
        Some(_) => return Err(FieldError::new("page_size", "must be a positive whole number").into()),
    };
    let mut params = ListParams::default().limit(page_size);
    if let Some(token) = query_one(query, "page_token").filter(|t| !t.is_empty()) {
        params = params.continue_token(token);
    }
    let page = api.list(&params).await.map_err(|e| api_error(&e))?;
    let name_prefix = query_one(query, "name_prefix").unwrap_or_default();
    let state = query_one(query, "state").filter(|s| !s.is_empty());
    let keys: Vec<&str> = query.iter().filter(|(k, _)| k == "tag_key").map(|(_, v)| v.as_str()).collect();
    let values: Vec<&str> = query.iter().filter(|(k, _)| k == "tag_value").map(|(_, v)| v.as_str()).collect();
    let tasks = page
        .items
        .iter()
        .filter(|task| wire::name(task).starts_with(name_prefix))
        .filter(|task| state.is_none_or(|s| wire::state(task) == s))
        .filter(|task| {
            let tags = wire::tags(task).unwrap_or_default();
            keys.iter().enumerate().all(|(i, key)| {
                let tag = tags.get(*key);
                tag.is_some()
                    && values.get(i).is_none_or(|v| v.is_empty() || tag.map(String::as_str) == Some(*v))
            })
        })
        .map(|task| wire::shown(task, view))
        .collect();
    let next_page_token = page.metadata.continue_.filter(|t| !t.is_empty());
    Ok(json_response(StatusCode::OK, &wire::TaskList { tasks, next_page_token }))
}

/// The workspace's task `id`, or why not.
async fn find(api: &Api<AnalysisTask>, token: &TesToken, id: &str) -> Result<AnalysisTask, Refused> {
    match api.get_opt(id).await {
        Ok(Some(task)) => Ok(task),
        Ok(None) => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "NoTask",
            format!("no task {id} in workspace {}", token.workspace),
        )),
        Err(error) => Err(api_error(&error)),
    }
}

/// The API server's refusal, passed on: its message names the field (schema, admission).
fn api_error(error: &kube::Error) -> Refused {
    match error {
        kube::Error::Api(status) => {
            let code = match status.code {
                422 | 400 => StatusCode::BAD_REQUEST,
                403 => StatusCode::FORBIDDEN,
                404 => StatusCode::NOT_FOUND,
                409 => StatusCode::CONFLICT,
                410 => StatusCode::GONE,
                _ => StatusCode::BAD_GATEWAY,
            };
            Refused::new(code, "ApiRefused", status.message.clone())
        }
        other => {
            tracing::warn!(error = %other, "the API server did not answer a TES call");
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the cluster could not be asked; try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tes_calls_are_read_from_method_and_path() {
        let call = |method: Method, path: &str| Call::parse(&method, path);
        assert_eq!(call(Method::GET, "/ga4gh/tes/v1/service-info"), Some(Call::ServiceInfo));
        assert_eq!(call(Method::GET, "/ga4gh/tes/v1/tasks"), Some(Call::List));
        assert_eq!(call(Method::POST, "/ga4gh/tes/v1/tasks"), Some(Call::Create));
        assert_eq!(call(Method::GET, "/ga4gh/tes/v1/tasks/tes-abc12"), Some(Call::Get("tes-abc12".into())));
        assert_eq!(
            call(Method::POST, "/ga4gh/tes/v1/tasks/tes-abc12:cancel"),
            Some(Call::Cancel("tes-abc12".into()))
        );
        for (method, path) in [
            (Method::GET, "/v1/tasks"),
            (Method::GET, "/ga4gh/tes/v1/tasks/a/b"),
            (Method::GET, "/ga4gh/tes/v1/tasks/..%2f"),
            (Method::GET, "/ga4gh/tes/v1/tasks/"),
            (Method::POST, "/ga4gh/tes/v1/tasks/x"),
            (Method::DELETE, "/ga4gh/tes/v1/tasks/x"),
            (Method::GET, "/ga4gh/tes/v1/tasks/UPPER"),
        ] {
            assert_eq!(call(method.clone(), path), None, "{method} {path}");
        }
    }

    #[test]
    fn each_call_asks_rbac_for_its_own_verb() {
        assert_eq!(Call::Create.verb(), "create");
        assert_eq!(Call::List.verb(), "list");
        assert_eq!(Call::Get("t".into()).verb(), "get");
        assert_eq!(Call::Cancel("t".into()).verb(), "update");
    }
}
