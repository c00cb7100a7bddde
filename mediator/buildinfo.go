package mediator

import (
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is what a binary knows of its own build: the module version the go command
// stamped (a tag, a pseudo-version from the VCS, or "(devel)"), the VCS revision and
// whether the tree had uncommitted changes, and the Go release it was built with.
type BuildInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Dirty     bool   `json:"dirty"`
	GoVersion string `json:"goVersion"`
}

// ReadBuildInfo reads the running binary's build information. override, when not empty,
// is a version set at link time (-ldflags "-X main.version=v1.2.3"), which release builds
// use and which wins over the module version.
func ReadBuildInfo(override string) BuildInfo {
	b := BuildInfo{Version: "(devel)", GoVersion: "unknown"}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.Module, b.GoVersion = info.Main.Path, info.GoVersion
		if info.Main.Version != "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Dirty = s.Value == "true"
			}
		}
	}
	if override != "" && override != "dev" {
		b.Version = override
	}
	return b
}

// registerBuildInfo registers tally_build_info, always 1, whose labels say which build is
// running: dashboards join on it, and an alert can tell replicas of different builds apart.
func registerBuildInfo(reg prometheus.Registerer, b BuildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Name: "build_info",
		Help: "Always 1; the labels name the running build (module version, VCS revision, dirty tree, Go version)."},
		[]string{"version", "revision", "dirty", "goversion"})
	reg.MustRegister(g)
	g.WithLabelValues(b.Version, b.Revision, strconv.FormatBool(b.Dirty), b.GoVersion).Set(1)
}
