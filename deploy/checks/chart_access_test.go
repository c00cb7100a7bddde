package checks

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selects reports whether a label selector (as Kubernetes evaluates it) matches lbls.
func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %+v: %v", sel, err)
	}
	return s.Matches(labels.Set(lbls))
}

// TestChartIngress: no Ingress by default; when enabled, one rule per host whose paths
// (only the ingest ones by default) go to the Service's http port, with the class,
// annotations and TLS of the values; the chart refuses an Ingress without hosts and a TLS
// host it does not serve.
func TestChartIngress(t *testing.T) {
	if m := mustRender(t, nil); len(m.ingresses) != 0 {
		t.Errorf("an Ingress is rendered by default")
	}
	m := mustRender(t, productionValues(t))
	if len(m.ingresses) != 1 {
		t.Fatalf("%d Ingresses with ingress.enabled: want 1", len(m.ingresses))
	}
	ing, svc := m.ingresses[0], m.services[0]
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v: want nginx", ing.Spec.IngressClassName)
	}
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
		t.Errorf("annotations %v: ingress.annotations are not applied", ing.Annotations)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "tally-tls" || !contains(ing.Spec.TLS[0].Hosts, "tally.kalima.example.org") {
		t.Errorf("tls %+v: want tally-tls for tally.kalima.example.org", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "tally.kalima.example.org" || ing.Spec.Rules[0].HTTP == nil {
		t.Fatalf("rules %+v: want one HTTP rule for tally.kalima.example.org", ing.Spec.Rules)
	}
	var paths []string
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		paths = append(paths, p.Path)
		b := p.Backend.Service
		if b == nil || b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
			t.Errorf("path %s goes to %+v: want Service %s port %s", p.Path, p.Backend, svc.Name, svc.Spec.Ports[0].Name)
		}
		if p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
			t.Errorf("path %s: pathType %v, want Prefix", p.Path, p.PathType)
		}
	}
	// Tally's routes under these prefixes are the ingest ones; /admin/v1 and /metrics stay
	// inside the cluster (mediator/httpapi/server.go routes()).
	if strings.Join(paths, " ") != "/ingest /api" {
		t.Errorf("paths %v: want only /ingest and /api (dataValueSets) by default", paths)
	}
	for _, c := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no hosts", map[string]any{"ingress": map[string]any{"enabled": true}}, "ingress.enabled needs ingress.hosts"},
		{"TLS for another host", map[string]any{"ingress": map[string]any{"enabled": true, "hosts": []any{"a.example.org"},
			"tls": []any{map[string]any{"secretName": "s", "hosts": []any{"b.example.org"}}}}}, `"b.example.org", which is not in ingress.hosts`},
		{"a path without a slash", map[string]any{"ingress": map[string]any{"paths": []any{map[string]any{"path": "ingest", "pathType": "Prefix"}}}}, "paths"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.values)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v: want one containing %q", err, c.want)
			}
		})
	}
}

// TestChartNetworkPolicy: none by default; when enabled it selects exactly Tally's pods, admits
// the configured peers and the helm test pod to the http port only, and lets Tally reach DNS,
// the NATS cluster (external mode only), the targets' CIDRs and ports, and the extra rules.
func TestChartNetworkPolicy(t *testing.T) {
	if m := mustRender(t, nil); len(m.netpols) != 0 {
		t.Errorf("a NetworkPolicy is rendered by default")
	}
	t.Run("embedded", func(t *testing.T) {
		m := mustRender(t, map[string]any{"networkPolicy": map[string]any{"enabled": true}})
		np := checkNetworkPolicy(t, m, 1)
		if peers := np.Spec.Ingress[0].From; !selects(t, peers[0].PodSelector, map[string]string{"any": "pod"}) || peers[0].NamespaceSelector != nil {
			t.Errorf("default ingressFrom %+v: want every pod of the release's namespace", peers[0])
		}
		if ports := egressPorts(np); ports["TCP/4222"] {
			t.Errorf("egress to NATS with the embedded server: %v", ports)
		}
		if cidrs := egressCIDRs(np); strings.Join(cidrs, " ") != "0.0.0.0/0" {
			t.Errorf("target CIDRs %v: want the default 0.0.0.0/0", cidrs)
		}
	})
	t.Run("production", func(t *testing.T) {
		m := mustRender(t, productionValues(t))
		np := checkNetworkPolicy(t, m, 3)
		ports := egressPorts(np)
		for _, want := range []string{"TCP/4222", "TCP/443", "TCP/8080"} {
			if !ports[want] {
				t.Errorf("no egress to %s (NATS, the HMIS, the OpenHIM core): %v", want, ports)
			}
		}
		if cidrs := egressCIDRs(np); strings.Join(cidrs, " ") != "203.0.113.0/24" {
			t.Errorf("target CIDRs %v: want networkPolicy.egress.targets.cidrs", cidrs)
		}
		var nsPeers []string
		for _, p := range np.Spec.Ingress[0].From {
			if p.NamespaceSelector != nil {
				nsPeers = append(nsPeers, p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
			}
		}
		if strings.Join(nsPeers, " ") != "ingress-nginx openhim monitoring" {
			t.Errorf("ingress from namespaces %v: want ingress-nginx, openhim and monitoring", nsPeers)
		}
	})
}

// checkNetworkPolicy checks what every NetworkPolicy of the chart must do.
func checkNetworkPolicy(t *testing.T, m *manifests, replicas int32) networkingv1.NetworkPolicy {
	t.Helper()
	d, c := podChecks(t, m, replicas)
	if len(m.netpols) != 1 {
		t.Fatalf("%d NetworkPolicies: want 1", len(m.netpols))
	}
	np := m.netpols[0]
	if !selects(t, &np.Spec.PodSelector, d.Spec.Template.Labels) {
		t.Errorf("the NetworkPolicy does not select Tally's pods")
	}
	if len(m.testPods) != 1 {
		t.Fatalf("%d test pods: want 1", len(m.testPods))
	}
	test := m.testPods[0]
	if selects(t, &np.Spec.PodSelector, test.Labels) {
		t.Errorf("the NetworkPolicy selects the test pod, whose egress to Tally it would then block")
	}
	var types []string
	for _, pt := range np.Spec.PolicyTypes {
		types = append(types, string(pt))
	}
	if !contains(types, "Ingress") || !contains(types, "Egress") {
		t.Errorf("policyTypes %v: want Ingress and Egress", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("%d ingress rules: want 1", len(np.Spec.Ingress))
	}
	in := np.Spec.Ingress[0]
	if len(in.Ports) != 1 || in.Ports[0].Port == nil || in.Ports[0].Port.String() != "http" || c.Ports[0].Name != "http" {
		t.Errorf("ingress ports %+v: want only the container's http port", in.Ports)
	}
	admitted := false
	for _, p := range in.From {
		if p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil && selects(t, p.PodSelector, test.Labels) {
			admitted = true
		}
	}
	if !admitted {
		t.Errorf("the NetworkPolicy does not admit the helm test pod (labels %v)", test.Labels)
	}
	dns := false
	for _, e := range np.Spec.Egress {
		udp, tcp := false, false
		for _, p := range e.Ports {
			udp = udp || p.Port.IntValue() == 53 && p.Protocol != nil && *p.Protocol == corev1.ProtocolUDP
			tcp = tcp || p.Port.IntValue() == 53 && p.Protocol != nil && *p.Protocol == corev1.ProtocolTCP
		}
		if udp && tcp && len(e.To) == 1 && e.To[0].PodSelector.MatchLabels["k8s-app"] == "kube-dns" {
			dns = true
		}
	}
	if !dns {
		t.Errorf("no egress rule to kube-dns on UDP and TCP 53: %+v", np.Spec.Egress)
	}
	return np
}

func egressPorts(np networkingv1.NetworkPolicy) map[string]bool {
	out := map[string]bool{}
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			out[string(*p.Protocol)+"/"+p.Port.String()] = true
		}
	}
	return out
}

func egressCIDRs(np networkingv1.NetworkPolicy) []string {
	var out []string
	for _, e := range np.Spec.Egress {
		for _, to := range e.To {
			if to.IPBlock != nil {
				out = append(out, to.IPBlock.CIDR)
			}
		}
	}
	return out
}

// TestChartTestHook checks the `helm test` pod: a test hook that calls GET /readyz on the
// Service's name and port, is no backend of the Service nor covered by the Deployment's or
// the PodDisruptionBudget's selectors, runs under the restricted Pod Security Standard, and
// is bounded in time.
func TestChartTestHook(t *testing.T) {
	for name, values := range map[string]map[string]any{"default": nil, "production": productionValues(t)} {
		t.Run(name, func(t *testing.T) {
			m := mustRender(t, values)
			if len(m.testPods) != 1 {
				t.Fatalf("%d test pods: want 1", len(m.testPods))
			}
			pod, svc, d := m.testPods[0], m.services[0], m.deployments[0]
			if pod.Annotations["helm.sh/hook"] != "test" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("annotations %v, restartPolicy %q: want a test hook that runs once", pod.Annotations, pod.Spec.RestartPolicy)
			}
			// NOTES and the README say `helm test --logs`; Helm deleted a hook-succeeded pod
			// before reading its logs until helm/helm#31579 (Nov 2025; issues #9098, #8018).
			if strings.Contains(pod.Annotations["helm.sh/hook-delete-policy"], "hook-succeeded") {
				t.Errorf("hook-delete-policy %q: `helm test --logs` fails on most Helm releases", pod.Annotations["helm.sh/hook-delete-policy"])
			}
			if pod.Spec.ActiveDeadlineSeconds == nil || *pod.Spec.ActiveDeadlineSeconds > 300 {
				t.Errorf("activeDeadlineSeconds %v: want a bound", pod.Spec.ActiveDeadlineSeconds)
			}
			want := "http://" + svc.Name + ":" + strconv.Itoa(int(svc.Spec.Ports[0].Port)) + "/readyz"
			c := pod.Spec.Containers[0]
			if len(c.Command) == 0 || c.Command[0] != "wget" || c.Command[len(c.Command)-1] != want {
				t.Errorf("command %v: want wget ... %s", c.Command, want)
			}
			if selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels) {
				t.Errorf("the Service selects the test pod: it would receive Tally's traffic")
			}
			if selects(t, d.Spec.Selector, pod.Labels) {
				t.Errorf("the Deployment's selector matches the test pod")
			}
			for _, pdb := range m.pdbs {
				if selects(t, pdb.Spec.Selector, pod.Labels) {
					t.Errorf("the PodDisruptionBudget counts the test pod")
				}
			}
			sc, psc := c.SecurityContext, pod.Spec.SecurityContext
			if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.SeccompProfile == nil || sc == nil ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 {
				t.Errorf("security context %+v / %+v: want non-root, RuntimeDefault seccomp, no escalation, drop ALL", psc, sc)
			}
			if c.Resources.Limits.Memory().IsZero() {
				t.Errorf("no memory limit")
			}
		})
	}
}

// TestChartTestHookCommand runs the test pod's command with busybox, when it is installed
// (Debian: apt-get install busybox), against a server that answers as Tally's /readyz does:
// 200 when ready, 503 otherwise. busybox wget exits 1 with "server returned error" for any
// status but 2xx (networking/wget.c; verified with Debian's busybox 1.35), so the hook
// passes only on 200, and fails when nothing listens.
func TestChartTestHookCommand(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is not installed (apt-get install busybox); TestChartTestHook checks the pod")
	}
	m := mustRender(t, nil)
	if len(m.testPods) != 1 {
		t.Fatalf("%d test pods: want 1", len(m.testPods))
	}
	cmd := m.testPods[0].Spec.Containers[0].Command
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"ready":false,"checks":{"jetstream":"not connected"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"ready":true,"checks":{"jetstream":"ok"}}`))
	}))
	defer srv.Close()
	run := func(base string) error {
		args := append([]string{}, cmd...)
		last := args[len(args)-1]
		args[len(args)-1] = base + last[strings.Index(last[len("http://"):], "/")+len("http://"):]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, bb, args...).Run()
	}
	if err := run(srv.URL); err != nil {
		t.Errorf("the hook fails against a ready Tally: %v", err)
	}
	ready.Store(false)
	if err := run(srv.URL); err == nil {
		t.Errorf("the hook passes against a Tally that answers 503")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	if err := run(closed); err == nil {
		t.Errorf("the hook passes when nothing listens")
	}
}
