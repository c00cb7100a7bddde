{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "tally.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tally.fullname" -}}
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

{{- define "tally.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tally.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tally.labels" -}}
helm.sh/chart: {{ include "tally.chart" . }}
{{ include "tally.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: mediator
app.kubernetes.io/part-of: tally
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The `helm test` pod's labels: the release's, but not the Service's selector (the pod is no
backend), so that the NetworkPolicy can admit it by these. */}}
{{- define "tally.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tally.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{- define "tally.testLabels" -}}
helm.sh/chart: {{ include "tally.chart" . }}
{{ include "tally.testSelectorLabels" . }}
app.kubernetes.io/part-of: tally
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tally.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tally.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tally.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "tally.pvcName" -}}
{{- .Values.nats.embedded.persistence.existingClaim | default (printf "%s-data" (include "tally.fullname" .)) }}
{{- end }}

{{/* Checks: every template includes this, so a bad combination fails the whole release. */}}
{{- define "tally.validate" -}}
{{- $mode := .Values.nats.mode }}
{{- if not (has $mode (list "embedded" "external")) }}
{{- fail (printf "nats.mode must be \"embedded\" or \"external\", not %q" $mode) }}
{{- end }}
{{- if and (eq $mode "embedded") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "nats.mode=embedded runs a single-node JetStream server inside the pod, so replicaCount must be 1 (got %d): two pods would each have their own streams, or fight over one volume. To run several replicas, set nats.mode=external with nats.external.url pointing at a NATS JetStream cluster and nats.external.replicas=3 (see docs/deployment.md)." (int .Values.replicaCount)) }}
{{- end }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- if eq $mode "external" }}
{{- if not .Values.nats.external.url }}
{{- fail "nats.mode=external needs nats.external.url, e.g. nats://nats-0.nats:4222,nats://nats-1.nats:4222,nats://nats-2.nats:4222" }}
{{- end }}
{{- $r := int .Values.nats.external.replicas }}
{{- if or (lt $r 1) (gt $r 5) }}
{{- fail (printf "nats.external.replicas must be 1 to 5 (got %d)" $r) }}
{{- end }}
{{- $a := .Values.nats.external.auth }}
{{- $ways := 0 }}
{{- if or $a.userKey $a.passwordKey }}{{ $ways = add1 $ways }}{{ end }}
{{- if $a.tokenKey }}{{ $ways = add1 $ways }}{{ end }}
{{- if $a.credsKey }}{{ $ways = add1 $ways }}{{ end }}
{{- if gt $ways 1 }}
{{- fail "nats.external.auth: set only one of userKey/passwordKey, tokenKey or credsKey" }}
{{- end }}
{{- if and (gt $ways 0) (not $a.existingSecret) }}
{{- fail "nats.external.auth: name the Secret holding the NATS credentials in existingSecret" }}
{{- end }}
{{- if or (and $a.userKey (not $a.passwordKey)) (and $a.passwordKey (not $a.userKey)) }}
{{- fail "nats.external.auth: userKey and passwordKey go together" }}
{{- end }}
{{- if or (and .Values.nats.external.tls.certKey (not .Values.nats.external.tls.keyKey)) (and .Values.nats.external.tls.keyKey (not .Values.nats.external.tls.certKey)) }}
{{- fail "nats.external.tls: certKey and keyKey go together" }}
{{- end }}
{{- end }}
{{- $cfg := .Values.config | default dict }}
{{- if hasKey $cfg "nats" }}
{{- fail "config.nats is set by the chart: use nats.mode, nats.embedded.* and nats.external.* instead" }}
{{- end }}
{{- if and (hasKey $cfg "http") (hasKey (get $cfg "http" | default dict) "addr") }}
{{- fail "config.http.addr is set by the chart from containerPort; remove it" }}
{{- end }}
{{- if and .Values.credentials.env (not .Values.credentials.existingSecret) }}
{{- fail "credentials.env maps variables to keys of a Secret: name it in credentials.existingSecret" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs ingress.hosts, e.g. --set ingress.hosts={tally.hmis.example.org}" }}
{{- end }}
{{- range .Values.ingress.tls }}
{{- range .hosts }}
{{- if not (has . $.Values.ingress.hosts) }}
{{- fail (printf "ingress.tls names host %q, which is not in ingress.hosts" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if hasKey .Values.files "tally.yaml" }}
{{- fail "files: tally.yaml is the rendered config; choose another file name" }}
{{- end }}
{{- /* Every ${VAR} in the config must come from an environment variable the pod has. */}}
{{- $envNames := include "tally.envNames" . | fromYamlArray }}
{{- range $ref := regexFindAll "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" (include "tally.config" .) -1 | uniq }}
{{- $name := trimSuffix "}" (trimPrefix "${" $ref) }}
{{- if not (has $name $envNames) }}
{{- fail (printf "config references %s but no environment variable provides it: map it to a key of the Secret in credentials.env (%s: <key>) or add it to extraEnv" $ref $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The names of the environment variables the container gets, as a YAML list. */}}
{{- define "tally.envNames" -}}
{{- $names := list }}
{{- range $name, $key := .Values.credentials.env }}{{ if $key }}{{ $names = append $names $name }}{{ end }}{{ end }}
{{- range .Values.extraEnv }}{{ $names = append $names .name }}{{ end }}
{{- if eq .Values.nats.mode "external" }}
{{- with .Values.nats.external.auth }}
{{- if .userKey }}{{ $names = append $names "NATS_USER" }}{{ $names = append $names "NATS_PASSWORD" }}{{ end }}
{{- if .tokenKey }}{{ $names = append $names "NATS_TOKEN" }}{{ end }}
{{- end }}
{{- end }}
{{- toYaml $names }}
{{- end }}

{{/* The nats section of the configuration, owned by the chart. */}}
{{- define "tally.natsConfig" -}}
{{- $n := dict }}
{{- if eq .Values.nats.mode "embedded" }}
{{- $_ := set $n "url" "" }}
{{- $_ := set $n "store_dir" .Values.nats.embedded.storeDir }}
{{- $_ := set $n "replicas" 1 }}
{{- else }}
{{- $e := .Values.nats.external }}
{{- $_ := set $n "url" $e.url }}
{{- $_ := set $n "replicas" (int $e.replicas) }}
{{- if $e.auth.userKey }}
{{- $_ := set $n "user" "${NATS_USER}" }}
{{- $_ := set $n "password" "${NATS_PASSWORD}" }}
{{- end }}
{{- if $e.auth.tokenKey }}
{{- $_ := set $n "token" "${NATS_TOKEN}" }}
{{- end }}
{{- if $e.auth.credsKey }}
{{- $_ := set $n "credentials_file" "/etc/tally-nats/auth/nats.creds" }}
{{- end }}
{{- if $e.tls.existingSecret }}
{{- $tls := dict "ca_file" "/etc/tally-nats/tls/ca.crt" }}
{{- if $e.tls.certKey }}
{{- $_ := set $tls "cert_file" "/etc/tally-nats/tls/tls.crt" }}
{{- $_ := set $tls "key_file" "/etc/tally-nats/tls/tls.key" }}
{{- end }}
{{- $_ := set $n "tls" $tls }}
{{- end }}
{{- end }}
{{- with .Values.nats.duplicateWindow }}{{ $_ := set $n "duplicate_window" . }}{{ end }}
{{- with .Values.nats.maxAge }}{{ $_ := set $n "max_age" . }}{{ end }}
{{- toYaml $n }}
{{- end }}

{{/* The whole configuration file: values.config plus the chart-owned http.addr and nats. */}}
{{- define "tally.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $http := deepCopy (get $cfg "http" | default dict) }}
{{- $_ := set $http "addr" (printf "0.0.0.0:%d" (int .Values.containerPort)) }}
{{- $_ := set $cfg "http" $http }}
{{- $_ := set $cfg "nats" (include "tally.natsConfig" . | fromYaml) }}
{{- toYaml $cfg }}
{{- end }}
