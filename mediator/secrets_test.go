package mediator_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// lockedBuffer is a log sink shared by the service's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Secrets that come from the environment (a source token, the admin token, a target's
// password) appear in no log line (debug included), no transaction or audit record and no
// metric, whatever the requests do: accepted, refused, admin actions.
func TestSecretsStayOutOfLogsRecordsAndMetrics(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	secrets := map[string]string{"SRC_TOKEN": "src-secret-token-9f8e7d6c5b4a", "ADM_TOKEN": "adm-secret-token-1a2b3c4d5e6f",
		"HMIS_PW": "district"}
	logs := &lockedBuffer{}
	dir := t.TempDir()
	yml := fmt.Sprintf(`nats: {store_dir: %q}
admin: {token: "${ADM_TOKEN}"}
sources:
  - {name: cht, auth: {tokens: ["${SRC_TOKEN}"]}, id_schemes: {id_scheme: CODE}}
targets:
  - {name: hmis, url: %q, username: admin, password: "${HMIS_PW}"}
`, dir, emu.URL)
	h := startFile(t, "test.yaml", yml, func(k string) string { return secrets[k] },
		mediator.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, nil)
	bad := `{"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_NOWHERE","categoryOptionCombo":"F_LT1","value":"1"}]}`
	code, res := h.post("/ingest/cht", "application/json", "Bearer "+secrets["SRC_TOKEN"], []byte(bad))
	if code != http.StatusAccepted {
		t.Fatalf("ingest: HTTP %d %v", code, res)
	}
	id := res["transaction"].(string)
	var seen []string
	get := func(path string) string {
		req, _ := http.NewRequest("GET", h.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+secrets["ADM_TOKEN"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(get("/admin/v1/transactions/"+id), `"status":"`+txlog.TxFailed+`"`); {
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s never failed", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.post("/ingest/cht", "application/json", "Bearer "+secrets["SRC_TOKEN"]+"x", []byte(bad)) // refused
	h.post("/admin/v1/dlq/discard", "application/json", "Bearer "+secrets["ADM_TOKEN"], []byte(`{"all": true}`))
	h.post("/admin/v1/dlq/discard", "application/json", "Bearer "+secrets["ADM_TOKEN"]+"x", []byte(`{"all": true}`))

	seen = append(seen, logs.String(), get("/metrics"), get("/admin/v1/transactions/"+id), get("/admin/v1/audit"))
	if !strings.Contains(seen[3], "/admin/v1/dlq/discard") || !strings.Contains(seen[0], "batch dead-lettered") {
		t.Fatalf("the test saw no audit entry or no dead-letter log line:\n%s\n%s", seen[3], seen[0])
	}
	for name, secret := range secrets {
		for i, where := range []string{"logs", "metrics", "transaction record", "audit log"} {
			if strings.Contains(seen[i], secret) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}
}
