package mediator_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The module's packages depend down the data flow only (issue #16, docs/architecture.md):
//
//	cmd → mediator (the composition root) → httpapi → ingest, exchange, dlq, openhim/outcome
//	    → delivery → pipeline → txlog, stream → adapters → transform; config beside them
//
// allowedImports is the table of every edge that exists: for each package of the module,
// the module packages it imports. An import the table does not list, a package missing
// from it, or an edge it lists that no longer exists fails the test, so that the table is
// the layering as it is and a new edge is a decision written here, not an accident. Test
// files are not checked: a test may reach across to drive the real thing.
var allowedImports = map[string][]string{
	// The commands and their helpers sit on top. tally's subcommands use the exchange
	// importer, the OpenHIM registration, the mapping check and the transaction log's
	// shapes directly.
	"cmd/tally": {"adapters/dhis2", "adapters/dhis2/dhis2test", "bench", "config", "examples", "mediator",
		"mediator/exchange", "mediator/openhim", "mediator/pipeline", "mediator/txlog", "transform", "transform/metadata"},
	"cmd/dhis2-sim": {"adapters/dhis2/dhis2test"},
	"bench":         {"adapters/adx", "adapters/dhis2/dhis2test", "adapters/dvs", "config", "mediator", "transform"},
	"examples":      nil,

	// The composition root builds every part and wires them; nothing imports it but the
	// commands.
	"mediator": {"config", "mediator/delivery", "mediator/dlq", "mediator/exchange", "mediator/exchange/schedule",
		"mediator/httpapi", "mediator/httpapi/console", "mediator/ingest", "mediator/openhim", "mediator/openhim/outcome",
		"mediator/pipeline", "mediator/stream", "mediator/txlog", "transform/mapping"},

	// The HTTP surface calls the services below it through interfaces of its own; it
	// imports their packages for the shapes it answers with.
	"mediator/httpapi": {"config", "mediator/delivery", "mediator/dlq", "mediator/exchange", "mediator/httpapi/auth",
		"mediator/httpapi/console", "mediator/ingest", "mediator/openhim", "mediator/pipeline", "mediator/txlog", "transform"},
	// Who is calling the admin surface and what their scope allows: the admin API and the
	// console share it.
	"mediator/httpapi/auth": {"config"},
	// The web console: pages over the same services as the admin API, through interfaces
	// of its own (httpapi mounts it, so it cannot import httpapi).
	"mediator/httpapi/console": {"config", "mediator/delivery", "mediator/dlq", "mediator/exchange", "mediator/httpapi/auth",
		"mediator/ingest", "mediator/txlog", "transform", "transform/metadata"},

	// What the HTTP surface and the scheduler call. Ingest and exchange read the targets
	// (delivery) for their DHIS2 era and metadata, and publish to the pipeline's streams.
	"mediator/ingest": {"adapters/adx", "adapters/dvs", "config", "mediator/delivery", "mediator/pipeline",
		"mediator/stream", "mediator/txlog", "transform", "transform/mapping", "transform/metadata", "transform/period"},
	"mediator/exchange": {"adapters/cht", "adapters/dhis2", "config", "mediator/delivery", "mediator/exchange/schedule",
		"mediator/pipeline", "mediator/stream", "mediator/txlog", "transform", "transform/mapping", "transform/metadata",
		"transform/period"},
	"mediator/openhim/outcome": {"config", "mediator/dlq", "mediator/openhim", "mediator/pipeline", "mediator/stream",
		"mediator/txlog", "transform"},
	"mediator/dlq": {"config", "mediator/pipeline", "mediator/stream", "mediator/txlog", "transform"},

	// The stages: delivery runs on the pipeline's consume chain; the pipeline maps.
	"mediator/delivery": {"adapters/dhis2", "adapters/dvs", "config", "mediator/pipeline", "mediator/stream",
		"mediator/txlog", "transform", "transform/metadata"},
	"mediator/pipeline": {"adapters/dhis2", "config", "mediator/stream", "mediator/txlog", "transform",
		"transform/mapping", "transform/metadata", "transform/period"},

	// The records every stage writes: below the stages, beside the streams.
	"mediator/txlog": {"transform"},

	// JetStream, the schedule and the OpenHIM protocol know nothing of the rest.
	"mediator/stream":                  nil,
	"mediator/stream/streamtest":       nil,
	"mediator/exchange/schedule":       nil,
	"mediator/openhim":                 {"mediator/openhim/internal/semver"},
	"mediator/openhim/internal/semver": nil,
	"mediator/openhim/openhimtest":     {"mediator/openhim/internal/semver"},

	// Adapters: wire formats and clients. No NATS, no mapping engine, no configuration.
	"adapters/adx":                         {"transform", "transform/period"},
	"adapters/dvs":                         {"transform"},
	"adapters/cht":                         {"adapters/dvs", "transform", "transform/period"},
	"adapters/dhis2":                       {"adapters/dvs", "transform", "transform/metadata"},
	"adapters/dhis2/dhis2test":             {"transform/period"},
	"adapters/dhis2/dhis2test/conformance": {"adapters/dhis2/dhis2test"},

	// The configuration reads ids and periods to check them; nothing else.
	"config": {"transform", "transform/period"},

	// The canonical model and the mapping engine: no HTTP, no NATS, no configuration.
	"transform":          {"transform/period"},
	"transform/period":   nil,
	"transform/metadata": {"transform"},
	"transform/mapping":  {"transform", "transform/metadata", "transform/period"},
}

// forbiddenDeps are imports, direct or not, that a part of the module must never reach:
// transform knows no HTTP and no NATS, and adapters know no NATS (issue #16).
var forbiddenDeps = []struct {
	under string // a package path prefix of the module
	deps  []string
}{
	{"transform", []string{"net/http", "github.com/nats-io/", "github.com/labstack/echo/"}},
	{"adapters", []string{"github.com/nats-io/"}},
	{"config", []string{"net/http", "github.com/nats-io/"}},
}

const module = "github.com/tally-hmis/tally"

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

// TestLayering runs go list over the module and checks every import against the tables.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,Error", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
			continue
		}
		seen++
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		allowed, known := allowedImports[name]
		if !known {
			t.Errorf("%s is not in the layering table (mediator/layering_test.go): place it in the data flow", name)
			continue
		}
		var used []string
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			used = append(used, dep)
			if !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, against the direction of the data flow (issue #16)", name, dep)
			}
		}
		for _, dep := range allowed {
			if !slices.Contains(used, dep) {
				t.Errorf("%s no longer imports %s: remove the edge from the layering table", name, dep)
			}
		}
		for _, f := range forbiddenDeps {
			if name != f.under && !strings.HasPrefix(name, f.under+"/") {
				continue
			}
			for _, bad := range f.deps {
				if i := slices.IndexFunc(p.Deps, func(d string) bool {
					return d == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(d, bad)
				}); i >= 0 {
					t.Errorf("%s depends on %s: %s/... must not", name, p.Deps[i], f.under)
				}
			}
		}
	}
	if seen < len(allowedImports) {
		t.Errorf("go list saw %d packages, the table names %d: remove the packages that are gone", seen, len(allowedImports))
	}
}
