{{/* The chart name, or nameOverride. */}}
{{- define "haven.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it already
contains the chart name (release `haven` gives `haven`), else `<release>-<chart>`. Cluster-scoped
objects carry it too, so two releases never fight over a name.
*/}}
{{- define "haven.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "haven.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "haven.labels" -}}
helm.sh/chart: {{ include "haven.chart" . }}
{{ include "haven.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: haven
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the operator pods (never change them: Deployment selectors are immutable). */}}
{{- define "haven.selectorLabels" -}}
app.kubernetes.io/name: {{ include "haven.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "haven.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "haven.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest pins it. */}}
{{- define "haven.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The data store's directory on the nodes, for the host-path volume backend. */}}
{{- define "haven.hostPathRoot" -}}
{{- if .Values.volumeBackend.hostPath.root -}}
{{- .Values.volumeBackend.hostPath.root -}}
{{- else if and .Values.dataStore.hostPath (not .Values.dataStore.existingClaim) -}}
{{- .Values.dataStore.hostPath -}}
{{- else -}}
{{- fail "volumeBackend.hostPath.root is required: with dataStore.existingClaim, say where the data store is on the nodes (or use volumeBackend.type nfs)" -}}
{{- end -}}
{{- end -}}

{{/* The name of the Lease the replicas elect a leader on (fixed in the operator). */}}
{{- define "haven.leaseName" -}}haven-operator{{- end -}}

{{/* The data store volume's source: the operator's, and the federation's, which shares it. */}}
{{- define "haven.dataStoreVolumeSource" -}}
{{- if .Values.dataStore.existingClaim -}}
persistentVolumeClaim:
  claimName: {{ .Values.dataStore.existingClaim }}
{{- else -}}
hostPath:
  path: {{ .Values.dataStore.hostPath }}
  type: DirectoryOrCreate
{{- end -}}
{{- end -}}
