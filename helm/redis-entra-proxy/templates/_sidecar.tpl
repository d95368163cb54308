{{/*
redis-entra-proxy.sidecar renders the proxy as a native sidecar: one item for
an application pod's initContainers list. The application then connects to
127.0.0.1:6379 without TLS or a token. Native sidecars (an init container
with restartPolicy: Always) need Kubernetes 1.29+; the kubelet starts the
proxy before the application containers, keeps it running beside them and
stops it after them, also in Jobs.

An application chart lists this chart as a dependency with
standalone.enabled=false and writes, under its pod spec:

  initContainers:
    {{- include "redis-entra-proxy.sidecar" (dict
          "image" "myregistry.azurecr.io/redis-entra-proxy:0.1.0"
          "upstream" "mycache.redis.cache.windows.net") | nindent 4 }}

The argument is a dict; only image and upstream are required:
  image              image reference
  upstream           the cache, HOST[:PORT]
  credential         default "workload-identity"
  name               container name, default "redis-entra-proxy"
  port               client port on 127.0.0.1, default 6379
  adminPort          admin port (probes, /metrics), default 9090
  imagePullPolicy    default "IfNotPresent"
  waitForToken       true: the application starts only once the proxy holds
                     a token (startupProbe on /readyz instead of /livez)
  gateReadiness      default true: the pod is ready only while the proxy
                     holds a valid token; false drops the readinessProbe, for
                     applications that keep serving without the cache
  enableQuitQuitQuit true: POST /quitquitquit stops the proxy (for a regular
                     container on clusters without native sidecars)
  extraArgs          further flags, each "--name=value"
  env                further EnvVar objects
  resources          replaces the default requests and limits

The pod also needs what the credential needs; for workload identity the label
azure.workload.identity/use: "true" and a service account annotated with
azure.workload.identity/client-id (see helm/examples/sidecar-pod.yaml).
*/}}
{{- define "redis-entra-proxy.sidecar" -}}
{{- $adminPort := .adminPort | default 9090 }}
- name: {{ .name | default "redis-entra-proxy" }}
  image: {{ required "redis-entra-proxy.sidecar: pass \"image\"" .image | quote }}
  imagePullPolicy: {{ .imagePullPolicy | default "IfNotPresent" }}
  restartPolicy: Always
  args:
    - "--listen=127.0.0.1:{{ .port | default 6379 }}"
    - "--admin-listen=0.0.0.0:{{ $adminPort }}"
    - {{ printf "--upstream=%s"
          (required "redis-entra-proxy.sidecar: pass \"upstream\"" .upstream) | quote }}
    - {{ printf "--credential=%s" (.credential | default "workload-identity") | quote }}
    {{- if .enableQuitQuitQuit }}
    - "--enable-quitquitquit"
    {{- end }}
    {{- range .extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- with .env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: proxy-admin
      containerPort: {{ $adminPort }}
  startupProbe:
    httpGet:
      path: {{ if .waitForToken }}/readyz{{ else }}/livez{{ end }}
      port: {{ $adminPort }}
    periodSeconds: 1
    failureThreshold: {{ if .waitForToken }}120{{ else }}30{{ end }}
  livenessProbe:
    httpGet:
      path: /livez
      port: {{ $adminPort }}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  {{- if or (not (hasKey . "gateReadiness")) .gateReadiness }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $adminPort }}
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  {{- end }}
  resources:
    {{- if .resources }}
    {{- toYaml .resources | nindent 4 }}
    {{- else }}
    requests:
      cpu: 50m
      memory: 96Mi
    limits:
      memory: 256Mi
    {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop:
        - ALL
    seccompProfile:
      type: RuntimeDefault
{{- end }}
