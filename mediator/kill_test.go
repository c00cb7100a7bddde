package mediator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestKillDuringLoadDeliversEveryValueOnce runs Tally as a real process, kills it with
// SIGKILL while it delivers a 100,000-value payload, starts it again on the same store and
// checks that the target ends up with every value exactly once and that the transaction log
// agrees.
//
// "Exactly once" is about what DHIS2 stores, not what it is sent: a batch that was in flight
// when the process died is sent again after the restart (JetStream redelivers it once
// AckWait has passed), and DHIS2's upsert counts an unchanged value as "ignored" without
// writing it. The emulator records a history entry only for real writes, so every key must
// hold the right value with a history of exactly one write. In the transaction log, such a
// re-sent batch reports its values as ignored rather than imported; the counts must still
// account for every value once: imported + updated + ignored = 100,000, none rejected.
func TestKillDuringLoadDeliversEveryValueOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tally as a child process")
	}
	bin := buildTally(t)
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	// Slow each import a little so that the kill lands mid-delivery.
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath, Delay: dhis2test.Duration(40 * time.Millisecond)})

	dir := t.TempDir()
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "tally.yaml")
	cfg := fmt.Sprintf(`http: {addr: %q, shutdown_timeout: 5s}
nats: {store_dir: %q, duplicate_window: 1h}
admin: {token: %s}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: %s
    password: %s
    timeout: 3s
    concurrency: 2
    retry: {initial_delay: 50ms, max_delay: 500ms}
delivery: {ack_wait: 1s}
log: {level: info}
`, addr, filepath.Join(dir, "nats"), adminToken, chtToken, emu.URL, dhis2test.SampleUser, dhis2test.SamplePassword)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr

	values, want := kalimaLoad(100_000)
	first := startProcess(t, bin, cfgFile, base)
	h := &harness{t: t, base: base}
	id := h.ingest(dvsBody(values))
	waitUntil(t, 30*time.Second, "delivery to start", func() bool { return emu.Store().Len() > 0 })
	if n := emu.Store().Len(); n >= len(values) {
		t.Fatalf("all %d values were delivered before the kill; slow the target down", n)
	}
	first.kill()
	t.Logf("killed tally with %d of %d values delivered", emu.Store().Len(), len(values))

	second := startProcess(t, bin, cfgFile, base)
	deadline := time.Now().Add(45 * time.Second)
	var tx map[string]any
	for {
		tx = h.tx(id)
		if tx["status"] == txlog.TxDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction stuck at %v after the restart (%d values stored)\nfirst run:\n%s\nsecond run:\n%s",
				tx["status"], emu.Store().Len(), first.output(), second.output())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The target holds every value, exactly once, with the value sent.
	stored := emu.Store().Values()
	if len(stored) != len(values) {
		t.Errorf("emulator holds %d values, want %d", len(stored), len(values))
	}
	for _, v := range stored {
		if w, ok := want[v.Key]; !ok || w != v.Value {
			t.Errorf("%v = %q, want %q (known: %v)", v.Key, v.Value, w, ok)
		}
		if hist := emu.Store().History(v.Key); len(hist) != 1 {
			t.Errorf("%v written %d times, want once", v.Key, len(hist))
		}
	}
	// The transaction log agrees.
	s := targetSummary(t, tx, "hmis")
	ic := s["importCount"].(map[string]any)
	imported, updated, ignored := num(ic["imported"]), num(ic["updated"]), num(ic["ignored"])
	if num(tx["values"]) != len(values) || num(s["values"]) != len(values) || num(s["rejected"]) != 0 ||
		num(s["done"]) != num(tx["batches"]) || imported+updated+ignored != len(values) || imported > len(values) {
		t.Errorf("transaction log disagrees: values %v, target %v", tx["values"], s)
	}
	t.Logf("transaction log: %d imported, %d ignored (re-sent after the kill), %d batches", imported, ignored, num(tx["batches"]))

	// A graceful stop of the real process: SIGTERM, exit 0.
	if err := second.stop(10 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, second.output())
	}
}

// kalimaLoad generates n distinct values over the Kalima sample's data sets, org units and
// combos, month by month from January 1950, and the value each key must end up with.
func kalimaLoad(n int) ([]dv, map[dhis2test.Key]string) {
	type combo struct{ de, coc, aoc string }
	var combos []combo
	for _, de := range []string{"EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1"} {
		for _, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
			combos = append(combos, combo{de, coc, ""})
		}
	}
	for _, aoc := range []string{"GOV", "NGO"} {
		for _, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
			combos = append(combos, combo{"MAL_CONFIRMED", coc, aoc})
		}
		for _, de := range []string{"MAL_TREATED", "MAL_LLIN_DISTRIBUTED", "MAL_REMARKS"} {
			combos = append(combos, combo{de, "", aoc})
		}
	}
	for _, de := range []string{"CHW_HOUSEHOLD_VISITS", "CHW_U5_ASSESSMENTS", "CHW_PREGNANCIES_REGISTERED"} {
		combos = append(combos, combo{de, "", ""})
	}
	meta := dhis2test.SampleMetadata()
	uid := func(code string, find func(string) string) string { return find(code) }
	ou := func(c string) string { return meta.OrgUnit(c).ID }
	de := func(c string) string { return meta.DataElement(c).ID }
	coc := func(c string) string {
		if c == "" {
			return dhis2test.DefaultCategoryOptionComboUID
		}
		return meta.CategoryOptionCombo(c).ID
	}
	values := make([]dv, 0, n)
	want := make(map[dhis2test.Key]string, n)
	for month := 0; len(values) < n; month++ {
		period := fmt.Sprintf("%04d%02d", 1950+month/12, month%12+1)
		for _, o := range []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"} {
			for _, c := range combos {
				if len(values) == n {
					break
				}
				v := fmt.Sprint(len(values)%997 + 1)
				if c.de == "MAL_REMARKS" {
					v = "remark " + v
				}
				values = append(values, dv{c.de, period, o, c.coc, c.aoc, v})
				want[dhis2test.Key{DataElement: uid(c.de, de), Period: period, OrgUnit: uid(o, ou),
					CategoryOptionCombo: coc(c.coc), AttributeOptionCombo: coc(c.aoc)}] = v
			}
		}
	}
	return values, want
}

// buildTally builds cmd/tally into the test's temporary directory.
func buildTally(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build tally with")
	}
	bin := filepath.Join(t.TempDir(), "tally")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/tally-hmis/tally/cmd/tally")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tally: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running tally serve.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcess(t *testing.T, bin, cfgFile, base string) *process {
	t.Helper()
	p := &process{t: t, out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--config", cfgFile)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "TALLY_ADMIN_TOKEN="+adminToken)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("tally exited before it was ready: %v\n%s", err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tally not ready after 30s\n%s", p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) output() string { return p.out.String() }

// kill sends SIGKILL and waits for the process to die; calling it again does nothing.
func (p *process) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no exit within %s", timeout)
	}
}
