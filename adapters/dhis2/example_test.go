package dhis2_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/transform"
)

// A 2.40 server refuses one value of three with HTTP 409: a partial success, not an error.
func ExampleClient_ImportDataValues() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"httpStatus":"Conflict","httpStatusCode":409,"status":"WARNING",
		 "message":"One more conflicts encountered, please check import summary.",
		 "response":{"responseType":"ImportSummary","status":"WARNING",
		  "importCount":{"imported":2,"updated":0,"ignored":1,"deleted":0},
		  "conflicts":[{"object":"MAL_TYPO","objects":{"dataElement":"MAL_TYPO"},
		   "value":"Data element not found or not accessible: `+"`MAL_TYPO`"+`",
		   "errorCode":"E7610","property":"dataElement","indexes":[2]}],
		  "rejectedIndexes":[2]}}`)
	}))
	defer srv.Close()

	c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: "admin", Password: "district"})
	if err != nil {
		fmt.Println(err)
		return
	}
	payload := dhis2.Bytes(dhis2.ContentTypeJSON, []byte(`{"dataValues":[...]}`))
	res, err := c.ImportDataValues(context.Background(), payload, dhis2.ImportOptions{
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode},
	})
	switch {
	case errors.Is(err, dhis2.ErrTooLarge):
		fmt.Println("split the batch")
	case errors.Is(err, dhis2.ErrTransient):
		fmt.Println("retry later")
	case errors.Is(err, dhis2.ErrPermanent):
		fmt.Println("dead-letter:", err)
	case err != nil:
		fmt.Println("stopped:", err)
	default:
		fmt.Println(res.Status, res.Era, res.Counts.Written(), "written; rejected", res.Rejected, res.IndexesKnown)
		fmt.Println(res.Conflicts[0].ErrorCode, res.Conflicts[0].Value)
	}
	// Output:
	// WARNING 2.38–2.42 2 written; rejected [2] true
	// E7610 Data element not found or not accessible: `MAL_TYPO`
}
