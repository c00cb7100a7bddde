// Package openhimtest is a fake OpenHIM core, built from Tally's OpenHIM spec and the
// core's sources (jembi/openhim-core-js), for tests of a mediator: its API at URL and its
// router at RouterURL, each behind a real HTTP(S) listener.
//
// The API has users with Basic and legacy token authentication, mediator registration with
// the core's validation rules and status codes, heartbeats with the one-shot config push,
// console config edits, channel installation, transactions (GET and PUT as the core answers
// them, PUT validating nothing) and rerun tasks (POST /tasks replays a stored request to the
// mediator as a child transaction with parentID and taskID headers; GET /tasks). The router authenticates clients, matches
// installed channels, stores each admitted request as a transaction, forwards it to the
// channel's primary route with X-OpenHIM-TransactionID, hands the client the response of an
// application/json+openhim envelope, and then writes the envelope into the transaction as the
// core does: response, orchestrations (the mediator's, then the core's own of the route
// call), status and properties, replacing what a mediator may have written before.
//
// A test of Tally through the core:
//
//	core := openhimtest.NewServer(openhimtest.WithClient("cht-app", "pw", "tally"))
//	defer core.Close()
//	// ... start Tally with openhim.url = core.URL; wait for core.Registrations() ...
//	core.InstallChannels("urn:mediator:tally")
//	core.UpdateChannel("Tally - cht", func(c *openhimtest.Channel) {
//		c.Routes[0].Host, c.Routes[0].Port = "127.0.0.1", tallyPort
//		c.Routes[0].Username, c.Routes[0].Password = "cht", "cht-password" // Tally's source user
//	})
//	// POST core.RouterURL+"/ingest/cht" as cht-app; the answer's X-OpenHIM-TransactionID
//	// names the transaction; read it back with core.Transaction(id) or GET /transactions/:id.
//
// The core's write of the envelope is late in a real deployment (0.3–0.5 s was seen):
// SetStoreDelay models that, and HoldStores / ReleaseStores / WaitStored let a test put a
// mediator's update before or after the core's write deterministically. SetDown and FailNext
// make the core refuse connections, hang up or answer 503, for good or for some requests.
//
//	core := openhimtest.NewServer()
//	defer core.Close()
//	cfg := openhim.DefaultConfig()
//	cfg.URL, cfg.Password = core.URL, openhimtest.RootPassword
package openhimtest
