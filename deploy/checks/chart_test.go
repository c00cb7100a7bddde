package checks

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/tally-hmis/tally/config"
)

const releaseName, releaseNamespace = "tally", "hmis"

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(repoPath(t, "charts/tally"))
	if err != nil {
		t.Fatalf("charts/tally does not load: %v", err)
	}
	return ch
}

// render renders the chart as `helm template` would for an install, with values on top of
// the chart's values.yaml (schema validation included).
func render(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	rv, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

func productionValues(t *testing.T) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(repoPath(t, "charts/tally/ci/production-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// manifests are the objects of one rendering, decoded strictly into the Kubernetes API types
// (an unknown or misspelt field is an error).
type manifests struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	pvcs        []corev1.PersistentVolumeClaim
	pdbs        []policyv1.PodDisruptionBudget
	accounts    []corev1.ServiceAccount
	ingresses   []networkingv1.Ingress
	netpols     []networkingv1.NetworkPolicy
	testPods    []corev1.Pod                // helm.sh/hook: test
	custom      map[string][]map[string]any // ServiceMonitor, PrometheusRule
	kinds       []string
	notes       string
	files       map[string]string
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func parseManifests(t *testing.T, out map[string]string) *manifests {
	t.Helper()
	m := &manifests{custom: map[string][]map[string]any{}, files: out}
	names := keys(out)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			m.notes = out[name]
			continue
		}
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		for _, doc := range docSep.Split(out[name], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", name, err, doc)
			}
			m.kinds = append(m.kinds, meta.Kind)
			strict := func(v any) {
				if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
					t.Errorf("%s: %s does not match the Kubernetes API: %v\n%s", name, meta.Kind, err, doc)
				}
			}
			switch meta.Kind {
			case "Deployment":
				m.deployments = append(m.deployments, decodeAs[appsv1.Deployment](strict))
			case "Service":
				m.services = append(m.services, decodeAs[corev1.Service](strict))
			case "ConfigMap":
				m.configMaps = append(m.configMaps, decodeAs[corev1.ConfigMap](strict))
			case "PersistentVolumeClaim":
				m.pvcs = append(m.pvcs, decodeAs[corev1.PersistentVolumeClaim](strict))
			case "PodDisruptionBudget":
				m.pdbs = append(m.pdbs, decodeAs[policyv1.PodDisruptionBudget](strict))
			case "ServiceAccount":
				m.accounts = append(m.accounts, decodeAs[corev1.ServiceAccount](strict))
			case "Ingress":
				m.ingresses = append(m.ingresses, decodeAs[networkingv1.Ingress](strict))
			case "NetworkPolicy":
				m.netpols = append(m.netpols, decodeAs[networkingv1.NetworkPolicy](strict))
			case "Pod":
				o := decodeAs[corev1.Pod](strict)
				if o.Annotations["helm.sh/hook"] != "test" {
					t.Errorf("%s renders a bare Pod that is not a helm test hook", name)
				}
				m.testPods = append(m.testPods, o)
			case "ServiceMonitor", "PrometheusRule":
				if meta.APIVersion != "monitoring.coreos.com/v1" {
					t.Errorf("%s: %s apiVersion %q: want monitoring.coreos.com/v1", name, meta.Kind, meta.APIVersion)
				}
				var o map[string]any
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatal(err)
				}
				m.custom[meta.Kind] = append(m.custom[meta.Kind], o)
			case "Secret":
				t.Errorf("%s renders a Secret: the chart must only reference existing Secrets", name)
			default:
				t.Errorf("%s: unexpected kind %q", name, meta.Kind)
			}
		}
	}
	return m
}

// decodeAs decodes one document into a T with decode (strictly, reporting a mismatch).
func decodeAs[T any](decode func(any)) T {
	var o T
	decode(&o)
	return o
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func mustRender(t *testing.T, values map[string]any) *manifests {
	t.Helper()
	out, err := render(t, values)
	if err != nil {
		t.Fatalf("the chart does not render: %v", err)
	}
	return parseManifests(t, out)
}

// TestChartMetadata checks Chart.yaml and that the chart ships the alert rules unchanged.
func TestChartMetadata(t *testing.T) {
	ch := loadChart(t)
	md := ch.Metadata
	if md.APIVersion != chart.APIVersionV2 {
		t.Errorf("Chart.yaml apiVersion %q: want v2", md.APIVersion)
	}
	if err := md.Validate(); err != nil {
		t.Errorf("Chart.yaml: %v", err)
	}
	if md.AppVersion == "" || md.Version == "" || md.Description == "" {
		t.Errorf("Chart.yaml: version, appVersion and description are required")
	}
	if !chartutil.IsCompatibleRange(md.KubeVersion, "v1.29.0") {
		t.Errorf("Chart.yaml kubeVersion %q excludes Kubernetes 1.29", md.KubeVersion)
	}
	if ch.Schema == nil {
		t.Errorf("the chart has no values.schema.json")
	}
	var alerts []byte
	for _, f := range ch.Files {
		if f.Name == "files/alerts.yml" {
			alerts = f.Data
		}
	}
	if string(alerts) != string(readRepoFile(t, "deploy/prometheus/alerts.yml")) {
		t.Errorf("charts/tally/files/alerts.yml differs from deploy/prometheus/alerts.yml")
	}
}

// podChecks are the checks every rendering's Deployment passes.
func podChecks(t *testing.T, m *manifests, replicas int32) (appsv1.Deployment, corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("%d Deployments: want 1 (kinds %v)", len(m.deployments), m.kinds)
	}
	d := m.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("Deployment replicas %v: want %d", d.Spec.Replicas, replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers: want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image == "" || strings.HasSuffix(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
		t.Errorf("image %q: want a pinned tag", c.Image)
	}
	if strings.Join(c.Args, " ") != "serve --config /etc/tally/tally.yaml" {
		t.Errorf("args %v: want serve --config /etc/tally/tally.yaml", c.Args)
	}
	var httpPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if httpPort == 0 {
		t.Errorf("no container port named http")
	}
	probe := func(what string, p *corev1.Probe, path string) {
		switch {
		case p == nil:
			t.Errorf("no %s probe", what)
		case p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http":
			t.Errorf("%s probe %+v: want GET %s on port http", what, p.ProbeHandler, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, "/healthz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	switch {
	case sc == nil || psc == nil:
		t.Errorf("no security context")
	default:
		if !(isTrue(sc.RunAsNonRoot) || isTrue(psc.RunAsNonRoot)) {
			t.Errorf("runAsNonRoot is not set")
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Errorf("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("allowPrivilegeEscalation is not false")
		}
		if isTrue(sc.Privileged) {
			t.Errorf("privileged")
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities %+v: want drop [ALL] and nothing added", sc.Capabilities)
		}
		if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("pod runAsUser %v: want the image's non-root user", psc.RunAsUser)
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("no RuntimeDefault seccomp profile")
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("the service account token is mounted; Tally does not use the Kubernetes API")
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 30 {
		t.Errorf("terminationGracePeriodSeconds %v: want more than http.shutdown_timeout (30s)", pod.TerminationGracePeriodSeconds)
	}
	if len(d.Spec.Template.Annotations["checksum/config"]) != 64 {
		t.Errorf("no checksum/config annotation (a config change must roll the pods)")
	}
	mounts := mountsOf(c)
	if mounts["/tmp"] == "" {
		t.Errorf("nothing writable at /tmp (payload spool) with a read-only root filesystem")
	}
	for _, v := range pod.Volumes {
		if v.Name == mounts["/tmp"] && v.EmptyDir == nil {
			t.Errorf("/tmp is not an emptyDir")
		}
	}
	// Secrets come from existing Secrets only, as env secretKeyRefs.
	for _, e := range c.Env {
		if e.Value != "" && regexp.MustCompile(`(?i)token|password|secret|pat$`).MatchString(e.Name) {
			t.Errorf("env %s carries a literal value: secrets must come from a Secret", e.Name)
		}
	}
	// The Service reaches the pods.
	if len(m.services) != 1 {
		t.Fatalf("%d Services: want 1", len(m.services))
	}
	svc := m.services[0]
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the pods do not carry", k, v)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Deployment selects %s=%s, which its pods do not carry", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v: want one port targeting http", svc.Spec.Ports)
	}
	if len(m.accounts) == 1 && m.accounts[0].Name != pod.ServiceAccountName {
		t.Errorf("the pods run as %s, the chart creates %s", pod.ServiceAccountName, m.accounts[0].Name)
	}
	return d, c
}

func isTrue(b *bool) bool { return b != nil && *b }

// mountsOf maps mount path -> volume name.
func mountsOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, m := range c.VolumeMounts {
		out[m.MountPath] = m.Name
	}
	return out
}

// chartConfig parses the rendered tally.yaml with Tally's config package, in the
// environment the pod gets (every env var with a stand-in value), and checks that every
// ${VAR} it uses is provided by the pod.
func chartConfig(t *testing.T, m *manifests, c corev1.Container) (*config.Config, string) {
	t.Helper()
	if len(m.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps: want 1", len(m.configMaps))
	}
	data := m.configMaps[0].Data["tally.yaml"]
	if data == "" {
		t.Fatalf("the ConfigMap has no tally.yaml")
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.Value != "":
			env[e.Name] = e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "stand-in-secret-" + strings.ToLower(e.Name)
		}
	}
	for _, ref := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(data, -1) {
		if _, ok := env[ref[1]]; !ok {
			t.Errorf("tally.yaml uses ${%s}, which the container's env does not provide", ref[1])
		}
	}
	cfg, err := config.Parse("tally.yaml", []byte(data), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Tally refuses the rendered configuration: %v\n%s", err, data)
	}
	if cfg.HTTP.Addr != fmt.Sprintf("0.0.0.0:%d", c.Ports[0].ContainerPort) {
		t.Errorf("http.addr %q: want 0.0.0.0:%d", cfg.HTTP.Addr, c.Ports[0].ContainerPort)
	}
	if mountsOf(c)["/etc/tally"] == "" {
		t.Errorf("the ConfigMap is not mounted at /etc/tally")
	}
	checkOpenHIM(t, "chart", cfg)
	return cfg, data
}

// secretRefs lists the Secrets the pod reads, from env and volumes.
func secretRefs(d appsv1.Deployment) map[string]bool {
	out := map[string]bool{}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			out[v.Secret.SecretName] = true
		}
	}
	return out
}

// fileOnSecret reports whether file is mounted in c from a Secret volume.
func fileOnSecret(d appsv1.Deployment, c corev1.Container, file string) bool {
	for _, vm := range c.VolumeMounts {
		dir := strings.TrimSuffix(vm.MountPath, "/") + "/"
		if !strings.HasPrefix(file, dir) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if dir+it.Path == file {
					return true
				}
			}
		}
	}
	return false
}

// TestChartDefault renders the chart with its own values: one replica with the embedded
// JetStream server on a PersistentVolumeClaim.
func TestChartDefault(t *testing.T) {
	m := mustRender(t, nil)
	d, c := podChecks(t, m, 1)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q: an embedded JetStream store is owned by one pod at a time, want Recreate", d.Spec.Strategy.Type)
	}
	cfg, _ := chartConfig(t, m, c)
	if cfg.NATS.URL != "" || cfg.NATS.Replicas != 1 {
		t.Errorf("nats url %q replicas %d: want the embedded server with 1 replica", cfg.NATS.URL, cfg.NATS.Replicas)
	}
	// Go's soft memory limit follows the pod's memory limit (1Gi), not Tally's small default.
	memLimit := ""
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			memLimit = e.Value
		}
	}
	if memLimit != "768MiB" {
		t.Errorf("GOMEMLIMIT = %q, want 768MiB (three quarters of the 1Gi limit)", memLimit)
	}
	// The store is on the claim.
	if len(m.pvcs) != 1 {
		t.Fatalf("%d PersistentVolumeClaims: want 1 for the embedded store", len(m.pvcs))
	}
	dataVol := ""
	for mp, vol := range mountsOf(c) {
		if cfg.NATS.StoreDir == mp || strings.HasPrefix(cfg.NATS.StoreDir, mp+"/") {
			dataVol = vol
		}
	}
	claimed := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == dataVol && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == m.pvcs[0].Name {
			claimed = true
		}
	}
	if !claimed {
		t.Errorf("nats.store_dir %s is not on the PersistentVolumeClaim %s", cfg.NATS.StoreDir, m.pvcs[0].Name)
	}
	if m.pvcs[0].Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the store's claim is deleted with the release: annotate it helm.sh/resource-policy: keep")
	}
	if len(m.pdbs) != 0 {
		t.Errorf("a PodDisruptionBudget on a single replica blocks node drains")
	}
	if len(m.custom["ServiceMonitor"]) != 0 || len(m.custom["PrometheusRule"]) != 0 {
		t.Errorf("ServiceMonitor and PrometheusRule are opt-in")
	}
	refs := secretRefs(d)
	if len(refs) != 1 || !refs["tally-credentials"] {
		t.Errorf("Secrets referenced %v: want only credentials.existingSecret (tally-credentials)", keys(refs))
	}
	if !strings.Contains(m.notes, "kubectl -n hmis create secret generic tally-credentials") {
		t.Errorf("NOTES.txt does not say how to create the credentials Secret:\n%s", m.notes)
	}
}

// TestChartProduction renders charts/tally/ci/production-values.yaml: three replicas on an
// external NATS cluster with three stream replicas, credentials from Secrets, monitoring.
func TestChartProduction(t *testing.T) {
	m := mustRender(t, productionValues(t))
	d, c := podChecks(t, m, 3)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v: want a rolling update that keeps every replica until its successor is ready", d.Spec.Strategy)
	}
	cfg, _ := chartConfig(t, m, c)
	if n := len(strings.Split(cfg.NATS.URL, ",")); n != 3 {
		t.Errorf("nats.url %q: want the 3 servers of the cluster", cfg.NATS.URL)
	}
	if cfg.NATS.Replicas != 3 {
		t.Errorf("nats.replicas %d: want 3", cfg.NATS.Replicas)
	}
	if cfg.NATS.CredentialsFile == "" || !fileOnSecret(d, c, cfg.NATS.CredentialsFile) {
		t.Errorf("nats.credentials_file %q is not mounted from a Secret", cfg.NATS.CredentialsFile)
	}
	if cfg.NATS.TLS.CAFile == "" || !fileOnSecret(d, c, cfg.NATS.TLS.CAFile) {
		t.Errorf("nats.tls.ca_file %q is not mounted from a Secret", cfg.NATS.TLS.CAFile)
	}
	if len(m.pvcs) != 0 {
		t.Errorf("external NATS needs no PersistentVolumeClaim")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s uses a claim: replicas must not share one", v.Name)
		}
	}
	refs := secretRefs(d)
	for _, want := range []string{"tally-credentials", "tally-nats", "tally-nats-tls"} {
		if !refs[want] {
			t.Errorf("the pods do not reference Secret %s (they reference %v)", want, keys(refs))
		}
	}
	if len(cfg.Targets) == 0 || cfg.Targets[0].Token == "" || cfg.Targets[0].Password != "" {
		t.Errorf("the production target should use a personal access token")
	}
	// PodDisruptionBudget over the same pods.
	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets: want 1", len(m.pdbs))
	}
	for k, v := range m.pdbs[0].Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which the pods do not carry", k, v)
		}
	}
	// ServiceMonitor on the Service's http port.
	sms := m.custom["ServiceMonitor"]
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors: want 1", len(sms))
	}
	sm, _ := yaml.Marshal(sms[0]["spec"])
	var spec struct {
		Selector  struct{ MatchLabels map[string]string } `json:"selector"`
		Endpoints []struct{ Port, Path string }           `json:"endpoints"`
	}
	if err := yaml.Unmarshal(sm, &spec); err != nil {
		t.Fatal(err)
	}
	for k, v := range spec.Selector.MatchLabels {
		if m.services[0].Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the Service does not carry", k, v)
		}
	}
	if len(spec.Endpoints) != 1 || spec.Endpoints[0].Port != "http" || spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want port http, path /metrics", spec.Endpoints)
	}
	if lbl, _ := sms[0]["metadata"].(map[string]any)["labels"].(map[string]any); lbl["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v: serviceMonitor.labels are not applied", lbl)
	}
	// PrometheusRule: the alert rules, unchanged.
	prs := m.custom["PrometheusRule"]
	if len(prs) != 1 {
		t.Fatalf("%d PrometheusRules: want 1", len(prs))
	}
	var rules struct{ Groups []any }
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/alerts.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	got, _ := yaml.Marshal(prs[0]["spec"].(map[string]any)["groups"])
	want, _ := yaml.Marshal(rules.Groups)
	if string(got) != string(want) {
		t.Errorf("the PrometheusRule's groups differ from deploy/prometheus/alerts.yml")
	}
	// tpl in topologySpreadConstraints
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if v := tsc.LabelSelector.MatchLabels["app.kubernetes.io/instance"]; v != releaseName {
			t.Errorf("topologySpreadConstraints instance label %q: want %q (values are templated)", v, releaseName)
		}
	}
	// The OpenHIM route is the Service.
	if !strings.Contains(m.configMaps[0].Data["tally.yaml"], "openhim:") {
		t.Errorf("the production values configure no OpenHIM registration")
	}
}

// TestChartExternalUserPassword covers NATS user/password credentials.
func TestChartExternalUserPassword(t *testing.T) {
	m := mustRender(t, map[string]any{
		"replicaCount": 2,
		"nats": map[string]any{"mode": "external", "external": map[string]any{
			"url":  "nats://a:4222,nats://b:4222,nats://c:4222",
			"auth": map[string]any{"existingSecret": "nats-user", "userKey": "user", "passwordKey": "password"},
		}},
	})
	d, c := podChecks(t, m, 2)
	cfg, _ := chartConfig(t, m, c)
	if cfg.NATS.User != "stand-in-secret-nats_user" || cfg.NATS.Password != "stand-in-secret-nats_password" {
		t.Errorf("nats user/password %q/%q: want them from NATS_USER/NATS_PASSWORD", cfg.NATS.User, cfg.NATS.Password)
	}
	if !secretRefs(d)["nats-user"] {
		t.Errorf("the pods do not read Secret nats-user")
	}
	if len(m.pdbs) != 1 {
		t.Errorf("two replicas: want a PodDisruptionBudget")
	}
}

// TestChartEmbeddedWithoutPersistence: an emptyDir store, and a warning.
func TestChartEmbeddedWithoutPersistence(t *testing.T) {
	m := mustRender(t, map[string]any{"nats": map[string]any{"embedded": map[string]any{"persistence": map[string]any{"enabled": false}}}})
	d, _ := podChecks(t, m, 1)
	if len(m.pvcs) != 0 {
		t.Errorf("persistence disabled but a claim is rendered")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" && v.EmptyDir == nil {
			t.Errorf("the data volume is not an emptyDir")
		}
	}
	if !strings.Contains(m.notes, "WARNING") {
		t.Errorf("NOTES.txt does not warn that the store is lost with the pod")
	}
}

// TestChartConfigChecksum: changing the configuration changes the pods' annotation, so
// `helm upgrade` rolls them.
func TestChartConfigChecksum(t *testing.T) {
	a := mustRender(t, nil).deployments[0].Spec.Template.Annotations["checksum/config"]
	b := mustRender(t, map[string]any{"config": map[string]any{"log": map[string]any{"level": "debug"}}}).deployments[0].Spec.Template.Annotations["checksum/config"]
	if a == "" || a == b {
		t.Errorf("checksum/config %q -> %q: want it to change with the configuration", a, b)
	}
}

// TestChartRefuses checks the combinations the chart refuses, each with a message that says
// what to do.
func TestChartRefuses(t *testing.T) {
	ext := func(extra map[string]any) map[string]any {
		n := map[string]any{"mode": "external", "external": map[string]any{"url": "nats://a:4222"}}
		for k, v := range extra {
			n["external"].(map[string]any)[k] = v
		}
		return n
	}
	cases := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"embedded with 3 replicas", map[string]any{"replicaCount": 3},
			"nats.mode=embedded runs a single-node JetStream server inside the pod, so replicaCount must be 1 (got 3)"},
		{"embedded with 2 replicas, explicit", map[string]any{"replicaCount": 2, "nats": map[string]any{"mode": "embedded"}},
			"set nats.mode=external"},
		{"external without url", map[string]any{"nats": map[string]any{"mode": "external"}},
			"nats.mode=external needs nats.external.url"},
		{"unknown mode", map[string]any{"nats": map[string]any{"mode": "cluster"}},
			"mode"},
		{"zero replicas", map[string]any{"replicaCount": 0}, "replicaCount"},
		{"too many stream replicas", map[string]any{"nats": ext(map[string]any{"replicas": 7})}, "replicas"},
		{"two NATS auth ways", map[string]any{"nats": ext(map[string]any{"auth": map[string]any{"existingSecret": "s", "tokenKey": "t", "credsKey": "c"}})},
			"set only one of"},
		{"NATS auth without a Secret", map[string]any{"nats": ext(map[string]any{"auth": map[string]any{"tokenKey": "t"}})},
			"existingSecret"},
		{"config.nats set", map[string]any{"config": map[string]any{"nats": map[string]any{"url": "nats://x:4222"}}},
			"config.nats is set by the chart"},
		{"config.http.addr set", map[string]any{"config": map[string]any{"http": map[string]any{"addr": "0.0.0.0:9999"}}},
			"config.http.addr is set by the chart"},
		{"a ${VAR} without env", map[string]any{"config": map[string]any{"admin": map[string]any{"token": "${NOT_PROVIDED}"}}},
			"config references ${NOT_PROVIDED} but no environment variable provides it"},
		{"env without a Secret", map[string]any{"credentials": map[string]any{"existingSecret": ""}},
			"credentials.existingSecret"},
		{"a typo in values", map[string]any{"replicas": 2}, "replicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil {
				t.Fatalf("the chart renders; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestChartValuesDocumented checks that every top-level value is commented in values.yaml.
func TestChartValuesDocumented(t *testing.T) {
	lines := strings.Split(string(readRepoFile(t, "charts/tally/values.yaml")), "\n")
	var undocumented []string
	for i, l := range lines {
		if l == "" || l[0] == ' ' || l[0] == '#' || !strings.Contains(l, ":") {
			continue
		}
		key, _, _ := strings.Cut(l, ":")
		if obvious[key] {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") && !strings.Contains(l, "#") {
			undocumented = append(undocumented, key)
		}
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("values.yaml: top-level keys without a comment: %v", undocumented)
	}
}

// obvious are Helm's conventional keys, documented by every chart the same way.
var obvious = map[string]bool{
	"image": true, "imagePullSecrets": true, "nameOverride": true, "fullnameOverride": true, "serviceAccount": true,
	"service": true, "podAnnotations": true, "podLabels": true, "resources": true, "livenessProbe": true,
	"readinessProbe": true, "priorityClassName": true, "nodeSelector": true, "tolerations": true, "affinity": true,
	"topologySpreadConstraints": true, "nats": true, "credentials": true, "podDisruptionBudget": true,
	"serviceMonitor": true, "prometheusRule": true,
}
