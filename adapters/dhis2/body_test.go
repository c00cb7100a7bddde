package dhis2

import (
	"context"
	"io"
	"net/http"
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
