{{/* Names, labels and values shared by the templates. */}}

{{- define "xpushare.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name: the release name alone when it already contains the chart's name. */}}
{{- define "xpushare.fullname" -}}
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

{{- define "xpushare.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xpushare.labels" -}}
helm.sh/chart: {{ include "xpushare.chart" . }}
app.kubernetes.io/name: {{ include "xpushare.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: pass (dict "ctx" . "component" "kubelet-plugin"). */}}
{{- define "xpushare.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xpushare.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "xpushare.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "xpushare.pluginServiceAccount" -}}
{{- default (printf "%s-kubelet-plugin" (include "xpushare.fullname" .)) .Values.serviceAccounts.kubeletPlugin.name }}
{{- end }}

{{- define "xpushare.controllerServiceAccount" -}}
{{- default (printf "%s-controller" (include "xpushare.fullname" .)) .Values.serviceAccounts.controller.name }}
{{- end }}

{{- define "xpushare.webhookService" -}}
{{- printf "%s-webhook" (include "xpushare.fullname" .) }}
{{- end }}

{{- define "xpushare.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "xpushare.fullname" .)) .Values.webhook.tls.secretName }}
{{- end }}

{{- define "xpushare.shimPath" -}}
{{- printf "%s/libxpushare.so" (trimSuffix "/" .Values.paths.shimDir) }}
{{- end }}

{{/* Global flags of the xpushare command (they precede the subcommand). */}}
{{- define "xpushare.globalArgs" -}}
- --log-level={{ .Values.logging.level }}
{{- if .Values.logging.json }}
- --log-json
{{- end }}
{{- end }}

{{/* OpenTelemetry variables (the standard OTEL_* ones the telemetry setup reads). */}}
{{- define "xpushare.otelEnv" -}}
{{- if .Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.telemetry.otlpEndpoint | quote }}
{{- end }}
{{- range $key, $value := .Values.telemetry.extraEnv }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* A pod's annotations: the component's podAnnotations, plus the prometheus.io ones when
metrics.scrapeAnnotations is on (podAnnotations win). Pass (dict "ctx" . "annotations" ... "port" ...). */}}
{{- define "xpushare.podAnnotations" -}}
{{- $annotations := deepCopy (.annotations | default dict) }}
{{- $metrics := .ctx.Values.metrics }}
{{- if and $metrics.enabled $metrics.scrapeAnnotations }}
{{- $scrape := dict "prometheus.io/scrape" "true" "prometheus.io/port" (toString .port) "prometheus.io/path" "/metrics" }}
{{- $annotations = merge $annotations $scrape }}
{{- end }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The --metrics-address flag of a component: every interface on its port, or 0 (off). */}}
{{- define "xpushare.metricsAddress" -}}
- --metrics-address={{ if .ctx.Values.metrics.enabled }}:{{ .port }}{{ else }}0{{ end }}
{{- end }}
