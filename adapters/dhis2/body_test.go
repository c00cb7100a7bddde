package dhis2

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestABodyGoesBackToThePoolOnlyOnceClosed: http.RoundTripper may close a request body
// after RoundTrip returned, and until then the transport may still read it. A buffer given
// back while the transport holds it would be overwritten by the next request's body.
func TestABodyGoesBackToThePoolOnlyOnceClosed(t *testing.T) {
	c := newTestClient(t, "http://dhis2.invalid")
	body, ok, err := c.bufferBody(&streamPayload{ct: ContentTypeJSON, data: []byte(samplePayload)})
	if err != nil || !ok {
		t.Fatalf("bufferBody: ok %v, %v", ok, err)
	}
	held := body.buf
	body.giveBack() // not closed yet: the transport may still be writing it
	if body.buf == nil {
		t.Fatal("the buffer went back to the pool before the transport closed the body")
	}
	if got, _ := io.ReadAll(body); string(got) != samplePayload {
		t.Fatalf("body read %q, want the payload", got)
	}
	body.Close()
	body.giveBack()
	if body.buf != nil {
		t.Fatal("a closed body's buffer did not go back to the pool")
	}
	if len(held.data) != 0 {
		t.Errorf("the pooled buffer kept %d bytes", len(held.data))
	}
}

// TestBodiesArriveWholeWhenTheTargetAnswersEarly: requests in flight at once each hold a
// pooled buffer, and half of them are answered before the target read the body (a 413
// from a proxy), which leaves the transport writing or closing it after the client has its
// answer. Every body the target reads must be the one its request was sent with: a buffer
// given to a second request while the first still sends it mixes their letters. (Whether
// the transport can still hold a body once the client has its answer is
// TestABodyGoesBackToThePoolOnlyOnceClosed's case.)
func TestBodiesArriveWholeWhenTheTargetAnswersEarly(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	bad := 0
	f.handle("POST /api/dataValueSets", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("dryRun") == "true" {
			reply(http.StatusRequestEntityTooLarge, jsonCT, `{"httpStatus":"Payload Too Large","httpStatusCode":413,"status":"ERROR","message":"too large"}`)(w, r)
			return
		}
		got, _ := io.ReadAll(r.Body) // one letter, repeated: a mix means a buffer was shared
		if len(got) != MaxBufferedBody-1 || strings.Trim(string(got), string(got[:1])) != "" {
			mu.Lock()
			bad++
			mu.Unlock()
		}
		reply(200, jsonCT, bodyD)(w, r)
	})
	c := newTestClient(t, f.url())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 6 {
				fill := string(rune('a' + (i+j)%26))
				data := []byte(strings.Repeat(fill, MaxBufferedBody-1))
				opts := ImportOptions{DryRun: j%2 == 0}
				_, _ = c.ImportDataValues(context.Background(), &streamPayload{ct: ContentTypeJSON, data: data}, opts)
			}
		})
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d bodies arrived other than they were sent", bad)
	}
}

// TestImportBodyInOnePassAsInThree: parseImportBody reads both shapes of an import answer
// in one pass; it must find what reading them one shape at a time finds, for every era's
// answer (spec dhis2.md §2.4, §3) and for answers that are neither.
func TestImportBodyInOnePassAsInThree(t *testing.T) {
	bodies := map[string]string{
		"A": bodyA, "B236": bodyB236, "B237": bodyB237, "C": bodyC, "D": bodyD,
		"243Warning": body243Warning, "243GroupError": body243GroupError, "241": body241,
		"238Success": body238Success, "WMSuccessPlain": bodyWMSuccessPlain, "BareSuccess": bodyBareSuccess,
		"Malformed": bodyMalformed, "Deadlock": bodyDeadlock, "409NotSummary": body409NotSummary,
		"401JSON": body401JSON, "401HTML": body401HTML, "403JSON": body403JSON, "400Token": body400Token,
		"502Proxy":              body502Proxy,
		"response a string":     `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","response":"done"}`,
		"response an array":     `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","response":[1]}`,
		"response null":         `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","response":null}`,
		"response empty":        `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","response":{}}`,
		"count of a wrong type": `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","response":{"responseType":"ImportSummary","status":"SUCCESS","importCount":[]}}`,
		"summary and message":   `{"httpStatusCode":200,"status":"SUCCESS","importCount":{"imported":1},"response":{"responseType":"ImportSummary","status":"ERROR"}}`,
		"no status":             `{"responseType":"ImportSummary","importCount":{"imported":1}}`,
		"empty":                 ``,
		"not JSON":              `{"httpStatus":`,
	}
	for name, body := range bodies {
		got, gotOK := parseImportBody([]byte(body))
		want, wantOK := parseImportBodyInPasses([]byte(body))
		if gotOK != wantOK || !reflect.DeepEqual(got.summary, want.summary) || (got.wm == nil) != (want.wm == nil) ||
			(got.wm != nil && (got.wm.Message != want.wm.Message || got.wm.Status != want.wm.Status)) {
			t.Errorf("%s: one pass found %+v (%v), three passes %+v (%v)", name, got, gotOK, want, wantOK)
		}
	}
}
