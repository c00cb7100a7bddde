// Package openhimtest is a fake OpenHIM core API, built from Tally's OpenHIM spec, for tests
// of the mediator client: users with Basic and legacy token authentication, mediator
// registration with the core's validation rules and status codes, heartbeats with the
// one-shot config push, console config edits, transaction updates, inspection helpers, TLS,
// down modes, and a manual clock.
//
//	core := openhimtest.NewServer()
//	defer core.Close()
//	cfg := openhim.DefaultConfig()
//	cfg.URL, cfg.Password = core.URL, openhimtest.RootPassword
package openhimtest
