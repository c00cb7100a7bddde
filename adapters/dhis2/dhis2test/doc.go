// Package dhis2test is an in-process DHIS2 emulator used like
// net/http/httptest: it serves the aggregate-data endpoints of the DHIS2 Web
// API over a real socket, stores what it is sent, and answers with the
// bodies and HTTP codes of the emulated DHIS2 version (2.36 … 2.43+).
//
// It is the test oracle for Tally's delivery code, so it is written
// independently of Tally's own parsers, from the wire-format spec
// (shared/spec/dhis2.md, shared/spec/adx.md) and the conformance fixtures.
//
// # Use
//
//	srv := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithT(t))
//	// srv.URL is the DHIS2 base URL, e.g. http://127.0.0.1:41234/dhis;
//	// the API is at srv.URL+"/api/...". Requests outside the base path fail
//	// the test (WithT), which catches clients that ignore the base URL.
//	... POST srv.URL+"/api/dataValueSets" with dhis2test.SampleUser/SamplePassword
//	v, ok := srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "F_LT1", "GOV")
//
// Without WithMetadata the server holds the bundled Kalima sample
// (SampleMetadata, sample/kalima.yaml). Metadata can be changed while the
// server runs with UpdateMetadata ("fix the metadata and replay").
//
// # Endpoints
//
//   - POST /api/dataValueSets and /api/NN/dataValueSets: JSON, DXF2 XML, ADX,
//     CSV (application/csv; text/csv is 415), gzip/zip bodies; id schemes,
//     import strategies, dryRun, strict/require flags, header overrides,
//     completeDate, async=true. Both import engines: the 2.36–2.42 validator
//     (E76xx conflicts) and the 2.43+ data entry pipeline (E80xx/E81xx,
//     "updated" counting, deletion scope, atomic).
//   - GET /api/system/tasks/{type}/{id}, /api/system/taskSummaries/{type}/{id}
//   - GET /api/system/info, GET /api/me, GET /api/ping (200, empty body, no
//     authentication), GET /api/system/ping ("pong", authenticated)
//   - GET /api/dataValueSets(.json|.xml|.csv): the export, with DHIS2's
//     parameters, output and input id schemes and E20xx errors.
//   - GET /api/analytics/dataValueSet(.json|.xml|.csv) over a fact table
//     (SetFacts, AddFacts; the sample carries 2024 facts for the Kalima program
//     indicators): dx/pe/ou dimensions, fixed and relative periods on the
//     server clock, LEVEL-n and children, every output id scheme incl.
//     ATTRIBUTE, duplicatesOnly.
//   - POST /api/resourceTables/analytics with ANALYTICS_TABLE tasks.
//   - /api/completeDataSetRegistrations, /api/messageConversations.
//   - Metadata lists (dataElements, categoryOptionCombos, categoryCombos,
//     categories, categoryOptions, organisationUnits, dataSets,
//     programIndicators, attributes, users, userGroups, aggregateDataExchanges)
//     with fields, filter and paging; aggregate data exchange runs.
//   - /__sim/...: fault injection, request log, store and jobs, outside /api.
//
// Each endpoint file registers its routes through Server.routes.
//
// # Authentication
//
// Every API path except /api/ping needs Basic or "ApiToken <token>"
// credentials of a metadata user; failures get DHIS2's 401 (or 2.43's 400)
// WebMessages. MakeToken and ValidTokenChecksum build and check tokens.
//
// # Inspection
//
// Store exposes every stored value (keyed by UIDs, soft deletes kept) with
// its write history, and how many times each key was received in an import
// (Received, ReceivedCounts; also GET /__sim/received), which catches
// duplicate deliveries that DHIS2 answers "ignored". Requests records every
// API request; ImportRequests counts imports.
//
// # Conformance
//
// Subpackage conformance holds the shared conformance table (fixtures of
// shared/conformance with their metadata and DHIS2's expected outcomes);
// TestConformance runs it against this emulator, and Tally runs it through
// its own ingest.
//
// # Faults
//
// Faults injects latency, connection resets, 5xx, 429 with Retry-After,
// hangs and truncated bodies, scoped to a path (relative to the base path,
// API version ignored) and method, optionally for N requests; rules fire in
// the order added, which scripts sequences ("reset, then 503 twice, then
// succeed"). AfterHandler lets the import happen and then fails the
// response. Faults apply before authentication, like a proxy would. The
// same is available over HTTP at /__sim/faults (see admin.go) for
// cmd/dhis2-sim.
//
// # Capacity
//
// WithCapacity makes imports cost time and compete for a bounded number of
// slots with a bounded queue (503 beyond it), like a DHIS2 behind a servlet
// thread pool; CapacityStats and /__sim/capacity report in-flight and
// queued imports and totals. See capacity.go for the defaults' sources.
//
// # Connections
//
// NewServer counts the TCP connections it accepts (Connections) and those that closed
// (ClosedConnections), so a test can see whether a client keeps its connections alive. By default a connection stays open for
// as long as the client keeps it; WithKeepAlive closes one after a number of requests or
// once idle, as the Tomcat in front of DHIS2 does (maxKeepAliveRequests, keepAliveTimeout).
//
// # Base path
//
// NewServer mounts DHIS2 under DefaultBasePath ("/dhis"): Server.URL is
// "http://127.0.0.1:PORT/dhis" and the API is at Server.URL+"/api/...", as
// on servers deployed under a context path. Async job responses carry
// DHIS2's relativeNotifierEndpoint ("/api/system/tasks/..."), which is
// relative to that base. WithBasePath("") serves at the root (the default
// of cmd/dhis2-sim).
//
// # Determinism
//
// Async jobs complete before their initiating response (or wait for
// RunPendingJobs with WithHeldJobs); imports are serialised; ids of requests
// and jobs are sequential; WithClock injects time.
package dhis2test
