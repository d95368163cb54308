{{/*
The chart's name, cut to the 63 characters of a DNS label.
*/}}
{{- define "redis-entra-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name alone when it already contains the
chart's name, otherwise "<release>-<chart>".
*/}}
{{- define "redis-entra-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "redis-entra-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the proxy's pods; they never change after the first install.
*/}}
{{- define "redis-entra-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redis-entra-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "redis-entra-proxy.labels" -}}
helm.sh/chart: {{ include "redis-entra-proxy.chart" . }}
{{ include "redis-entra-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: proxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "redis-entra-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "redis-entra-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: by digest when one is given, else by tag (the chart's
appVersion unless image.tag is set).
*/}}
{{- define "redis-entra-proxy.image" -}}
{{- $repository := required
      "image.repository: push the image built from the Dockerfile and name it here"
      .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Secret holding the client password: the existing one named in the values,
or the one this chart creates from clientPassword.value. Empty when there is
neither, which only proxy.allowRemoteClients permits.
*/}}
{{- define "redis-entra-proxy.clientPasswordSecret" -}}
{{- if and .Values.clientPassword.existingSecret .Values.clientPassword.value }}
{{- fail "clientPassword: set existingSecret or value, not both" }}
{{- end }}
{{- if .Values.clientPassword.existingSecret }}
{{- .Values.clientPassword.existingSecret }}
{{- else if .Values.clientPassword.value }}
{{- $fullname := include "redis-entra-proxy.fullname" . }}
{{- printf "%s-client-password" $fullname | trunc 63 | trimSuffix "-" }}
{{- else if not .Values.proxy.allowRemoteClients }}
{{- fail (printf "%s %s"
      "clientPassword: the shared proxy listens on the pod network, so clients must"
      "authenticate; set clientPassword.existingSecret (or clientPassword.value)") }}
{{- end }}
{{- end }}

{{- define "redis-entra-proxy.clientPasswordKey" -}}
{{- if .Values.clientPassword.existingSecret }}
{{- .Values.clientPassword.existingSecretKey | default "password" }}
{{- else }}
{{- "password" }}
{{- end }}
{{- end }}
