{{/* The federation's object names: `<fullname>-federation`. */}}
{{- define "haven.federation.fullname" -}}
{{- printf "%s-federation" (include "haven.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels on the federation's objects. Its own app.kubernetes.io/name, so its pods never match the
operator's selector (immutable: name and instance only).
*/}}
{{- define "haven.federation.labels" -}}
helm.sh/chart: {{ include "haven.chart" . }}
{{ include "haven.federation.selectorLabels" . }}
app.kubernetes.io/component: federation
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: haven
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "haven.federation.selectorLabels" -}}
app.kubernetes.io/name: {{ include "haven.name" . }}-federation
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
