{{/*
"true" when the access gateway is deployed: enabled, and told its own address and its identity
provider, without which it cannot work (NOTES.txt says which is missing); else empty.
*/}}
{{- define "haven.gateway.deployed" -}}
{{- if and .Values.gateway.enabled .Values.gateway.publicUrl .Values.gateway.oidc.issuerUrl -}}true{{- end -}}
{{- end -}}

{{/* Why the gateway is not deployed, for NOTES.txt; empty when it is. */}}
{{- define "haven.gateway.notDeployedBecause" -}}
{{- if not .Values.gateway.enabled -}}
gateway.enabled is false
{{- else -}}
{{- $missing := list -}}
{{- if not .Values.gateway.publicUrl }}{{ $missing = append $missing "gateway.publicUrl" }}{{ end -}}
{{- if not .Values.gateway.oidc.issuerUrl }}{{ $missing = append $missing "gateway.oidc.issuerUrl" }}{{ end -}}
{{- with $missing }}{{ join " and " . }} {{ ternary "is" "are" (eq (len .) 1) }} not set: it cannot work without its address and identity provider{{ end -}}
{{- end -}}
{{- end -}}

{{/* The gateway's object names: `<fullname>-gateway`. */}}
{{- define "haven.gateway.fullname" -}}
{{- printf "%s-gateway" (include "haven.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels on the gateway's objects. Its own app.kubernetes.io/name, so its pods never match the
operator's selector (immutable: name and instance only).
*/}}
{{- define "haven.gateway.labels" -}}
helm.sh/chart: {{ include "haven.chart" . }}
{{ include "haven.gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: haven
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "haven.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "haven.name" . }}-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The listener's scheme: https with a TLS Secret, else http (behind an Ingress). */}}
{{- define "haven.gateway.scheme" -}}
{{- ternary "https" "http" (not (empty .Values.gateway.tls.secretName)) -}}
{{- end -}}

{{/*
"true" when the gateway serves the TES API: deployed, gateway.tes.enabled, and with TLS (the
workspaces' bearer tokens must not cross the cluster network in the clear); else empty.
*/}}
{{- define "haven.gateway.tes" -}}
{{- if and (include "haven.gateway.deployed" .) .Values.gateway.tes.enabled .Values.gateway.tls.secretName -}}true{{- end -}}
{{- end -}}

{{/* The TES API's Service, and its address as workspaces reach it (the certificate must name it). */}}
{{- define "haven.gateway.tesServiceName" -}}
{{- printf "%s-tes" (include "haven.gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "haven.gateway.tesRoleName" -}}
{{- printf "%s-tes" (include "haven.gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "haven.gateway.tesUrl" -}}
{{- printf "%s://%s.%s.svc:%d" (include "haven.gateway.scheme" .) (include "haven.gateway.tesServiceName" .) .Values.network.gatewayNamespace (int .Values.gateway.tes.port) -}}
{{- end -}}

{{/* The Secret holding the OIDC client's secret. */}}
{{- define "haven.gateway.oidcSecretName" -}}
{{- default (printf "%s-oidc" (include "haven.gateway.fullname" .)) .Values.gateway.oidc.clientSecret.name -}}
{{- end -}}

{{/* The Secret holding the cookie key, and its key. */}}
{{- define "haven.gateway.cookieKeySecretName" -}}
{{- default (printf "%s-cookie-key" (include "haven.gateway.fullname" .)) .Values.gateway.cookieKey.existingSecret -}}
{{- end -}}

{{/* The claim holding the access log: an existing one, or the chart's (on a node directory). */}}
{{- define "haven.gateway.accessLogClaim" -}}
{{- default (printf "%s-access-log" (include "haven.gateway.fullname" .)) .Values.gateway.accessLog.existingClaim -}}
{{- end -}}

{{/* The node directory of the chart-made access-log volume. */}}
{{- define "haven.gateway.accessLogHostPath" -}}
{{- if .Values.gateway.accessLog.hostPath -}}
{{- .Values.gateway.accessLog.hostPath -}}
{{- else if and .Values.dataStore.hostPath (not .Values.dataStore.existingClaim) -}}
{{- /* The data store's audit/, where `kubectl haven access` and `haven audit verify` look. */ -}}
{{- printf "%s/audit" (trimSuffix "/" .Values.dataStore.hostPath) -}}
{{- else -}}
{{- fail "gateway.accessLog: set existingClaim (production: a volume researchers cannot reach) or hostPath; with dataStore.existingClaim there is no default" -}}
{{- end -}}
{{- end -}}
