package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// The console in a real headless Chromium (Debian's chromium, installed by .ci/run),
// driven with chromedp against a real Tally and the DHIS2 emulator.

// chromium finds the browser: missing, the test is skipped locally and fails in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium is not installed (apt-get install chromium); the browser tests need it")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile; each call is a separate
// browser with its own cookies.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser, which lives as long as its context: no timeout
	// on that one (chromedp.Run's documentation); each step below has its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// stepTimeout bounds one step of a browser test.
const stepTimeout = 30 * time.Second

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs an action that answers a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return value(t, ctx, "text of "+css, chromedp.Text(chromedp.CSS(css)))
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return value(t, ctx, js, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// loginAs fills the login form the console redirects to.
func loginAs(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "log in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("h-targets")))
}

// postForm submits a form from the page with fetch and returns the HTTP status: what a
// script or a forged page could send, with or without the session's CSRF token.
func postForm(t *testing.T, ctx context.Context, path string, fields map[string]string) int {
	t.Helper()
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("[%q, %q]", k, v))
	}
	js := fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams([%s]), redirect: "manual"}).then(r => r.status)`,
		path, strings.Join(parts, ","))
	return eval[int](t, ctx, js)
}

func pageCSRF(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `document.querySelector("input[name=csrf]").value`)
}

func TestBrowserMainFlow(t *testing.T) {
	tl := startTally(t, exchangeYAML(t))
	ctx := newBrowser(t)
	loginAs(t, ctx, tl.base, operatorToken)

	// A payload the target partly rejects: KL_N_F3 is not known to it yet.
	id := tl.partial()

	// From the overview to the target's dead letters.
	run(t, ctx, "find the dead letters from the overview",
		chromedp.Navigate(tl.base+"/console/"),
		chromedp.Click(chromedp.CSS(`a.bad[href^="/console/dlq?target=hmis"]`)),
		chromedp.WaitVisible(chromedp.ID("dlq-total")))
	total := text(t, ctx, "#dlq-total")
	if !strings.Contains(total, "1 dead letters match, holding 4 values") {
		t.Fatalf("dead-letter list says %q", total)
	}

	// Fix the target's metadata, preview the replay, replay.
	fixFacility(t, tl.emu)
	run(t, ctx, "preview the replay",
		chromedp.Click(chromedp.CSS(`input[name=seq]`)),
		chromedp.Click(chromedp.ID("preview-selected")),
		chromedp.WaitVisible(chromedp.ID("preview-summary")))
	preview, values := text(t, ctx, "#preview-summary"), text(t, ctx, "main table")
	if !strings.Contains(preview, "1 dead letters (4 values") || !strings.Contains(values, "KL_N_F3") || !strings.Contains(values, "BCG doses given") {
		t.Fatalf("preview: %q\n%s", preview, values)
	}
	run(t, ctx, "replay", chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("result-summary")))
	result := text(t, ctx, "#result-summary")
	if !strings.Contains(result, "1 of 1 dead letters replayed (4 values)") {
		t.Fatalf("replay result: %q", result)
	}

	// The transaction becomes delivered.
	deadline := time.Now().Add(15 * time.Second)
	for {
		run(t, ctx, "open the transaction", chromedp.Navigate(tl.base+"/console/transactions/"+id))
		status := text(t, ctx, ".summary .big")
		if status == txlog.TxDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction is %q after the replay", status)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An exchange dry run, read as its diff table.
	run(t, ctx, "dry run the exchange",
		chromedp.Navigate(tl.base+"/console/exchanges/epi"),
		chromedp.Click(chromedp.ID("dry-run")),
		chromedp.WaitVisible(chromedp.CSS("table.diff-table")))
	counts := text(t, ctx, ".diff-counts")
	added := eval[int](t, ctx, `document.querySelectorAll("table.diff-table tr.row-added").length`)
	firstRow := text(t, ctx, "table.diff-table tbody tr")
	if !strings.Contains(counts, "24 added") || added != 24 || !strings.Contains(firstRow, "BCG doses given") {
		t.Errorf("dry run diff: %q, %d added rows, first row %q", counts, added, firstRow)
	}

	// A request without the CSRF token is refused, even with the session cookie.
	if st := postForm(t, ctx, "/console/dlq/discard", map[string]string{"all": "true", "confirm": "0"}); st != 403 {
		t.Errorf("discard without the CSRF token: HTTP %d, want 403", st)
	}

	// A read-only session sees a new dead letter but is not offered, and refused, the replay.
	id2 := tl.ingest(dvsJSON(append(goodValues("202402", 0), dv{"EPI_BCG", "202402", "KL_X_F9", "F_LT1", "7"})))
	tl.waitStatus(id2, txlog.TxPartiallyDelivered)
	viewer := newBrowser(t)
	loginAs(t, viewer, tl.base, viewerToken)
	run(t, viewer, "dead letters as viewer", chromedp.Navigate(tl.base+"/console/dlq"), chromedp.WaitVisible(chromedp.ID("dlq-total")))
	offered := eval[int](t, viewer, `document.querySelectorAll("#discard-selected, #discard-all").length`)
	run(t, viewer, "preview as viewer",
		chromedp.Click(chromedp.CSS(`input[name=seq]`)),
		chromedp.Click(chromedp.ID("preview-selected")),
		chromedp.WaitVisible(chromedp.ID("preview-summary")))
	replayButtons := eval[int](t, viewer, `document.querySelectorAll("#replay").length`)
	if offered != 0 || replayButtons != 0 {
		t.Errorf("a read session is offered %d discard and %d replay buttons", offered, replayButtons)
	}
	seq := eval[string](t, viewer, `document.querySelector("main h2 a").textContent`)
	if st := postForm(t, viewer, "/console/dlq/replay", map[string]string{"csrf": pageCSRF(t, viewer), "seq": seq}); st != 403 {
		t.Errorf("read session replay with a valid CSRF token: HTTP %d, want 403", st)
	}
	run(t, viewer, "the letter stays", chromedp.Navigate(tl.base+"/console/dlq"))
	still := text(t, viewer, "#dlq-total")
	if !strings.Contains(still, "1 dead letters match") {
		t.Errorf("after a refused replay: %q", still)
	}
}
