//go:build screenshots

package console_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestConsoleScreenshots writes a PNG of each console page to docs/console/, as
// docs/console.md shows them:
//
//	go test -tags screenshots -run TestConsoleScreenshots ./mediator/httpapi/console/
//
// It drives the same Tally, emulator and Chromium as TestBrowserMainFlow.
func TestConsoleScreenshots(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tl := startTally(t, exchangeYAML(t))
	for i := range 3 {
		tl.waitStatus(tl.ingest(dvsJSON(goodValues("2023"+[]string{"10", "11", "12"}[i], i*10))), txlog.TxDelivered)
	}
	partial := tl.partial()

	ctx := newBrowser(t)
	shoot := func(name string) {
		t.Helper()
		png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, "viewport", chromedp.EmulateViewport(1280, 800))
	run(t, ctx, "login page", chromedp.Navigate(tl.base+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	shoot("login")
	loginAs(t, ctx, tl.base, operatorToken)
	shoot("overview")
	run(t, ctx, "transactions", chromedp.Navigate(tl.base+"/console/transactions"))
	shoot("transactions")
	run(t, ctx, "transaction", chromedp.Navigate(tl.base+"/console/transactions/"+partial))
	shoot("transaction")
	run(t, ctx, "transaction values", chromedp.Click(chromedp.ID("tx-values")), chromedp.WaitVisible(chromedp.ID("values-total")))
	shoot("transaction-values")
	run(t, ctx, "dead letters", chromedp.Navigate(tl.base+"/console/dlq"), chromedp.WaitVisible(chromedp.ID("dlq-total")))
	shoot("dead-letters")
	run(t, ctx, "replay preview", chromedp.Click(chromedp.CSS(`input[name=seq]`)), chromedp.Click(chromedp.ID("preview-selected")),
		chromedp.WaitVisible(chromedp.ID("preview-summary")))
	shoot("replay-preview")
	run(t, ctx, "discard confirmation", chromedp.Navigate(tl.base+"/console/dlq"), chromedp.Click(chromedp.ID("discard-all")),
		chromedp.WaitVisible(chromedp.ID("confirm-text")))
	shoot("discard-confirmation")
	run(t, ctx, "dead letter", chromedp.Navigate(tl.base+"/console/dlq"), chromedp.Click(chromedp.CSS(`a[href^="/console/dlq/"]`)),
		chromedp.WaitVisible(chromedp.CSS("main dl")))
	shoot("dead-letter")
	run(t, ctx, "exchange dry run", chromedp.Navigate(tl.base+"/console/exchanges/epi"), chromedp.Click(chromedp.ID("dry-run")),
		chromedp.WaitVisible(chromedp.CSS("table.diff-table")))
	shoot("exchange-dry-run")
	run(t, ctx, "exchanges", chromedp.Navigate(tl.base+"/console/exchanges"))
	shoot("exchanges")
	run(t, ctx, "origin", chromedp.Navigate(tl.base+"/console/origin?"+url.Values{"target": {"hmis"}, "de": {"BCG doses given"},
		"pe": {"202401"}, "ou": {"KL_N_F3"}}.Encode()))
	shoot("origin")
	payload := string(dvsJSON([]dv{{"EPI_BCG", "202401", "KL_N_F1", "F_LT1", "1"}, {"EPI_BCG", "202401", "KL_N_F1", "F_1TO4", "99"},
		{"EPI_PENTA1", "202401", "KL_N_F1", "F_LT1", "5"}}))
	run(t, ctx, "mapping preview", chromedp.Navigate(tl.base+"/console/preview"),
		chromedp.SetValue(chromedp.ID("payload"), payload), chromedp.Click(chromedp.ID("preview-run")),
		chromedp.WaitVisible(chromedp.ID("preview-result")))
	shoot("mapping-preview")
	run(t, ctx, "phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(tl.base+"/console/"))
	shoot("overview-phone")
}
