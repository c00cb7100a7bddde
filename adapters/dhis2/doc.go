// Package dhis2 is Tally's client for the DHIS2 Web API: it posts aggregate data value
// payloads to /api/dataValueSets, reads every era's import summary into one ImportResult,
// and decides once, here, whether a failure is transient or permanent.
//
// Section numbers (§) refer to the shared DHIS2 wire-format notes, spec/dhis2.md.
//
// # Response eras
//
// DHIS2 has answered an import in four shapes (§0.3, §2):
//
//	era        body                                  HTTP on WARNING   conflicts
//	≤ 2.36     bare ImportSummary                    200               {object,value}, no indexes
//	2.37       bare ImportSummary (also /api/37/     200               errorCode, objects, property, indexes
//	           on 2.38–2.41)
//	2.38–2.42  WebMessage{response: ImportSummary}   409 (!)           as 2.37; rejectedIndexes from 2.41
//	2.43+      WebMessage{response: ImportSummary}   200               objects.args, E80xx/E81xx codes;
//	                                                                   every upsert counted as "updated"
//
// ImportResult.Era says which shape was seen. When the body alone cannot tell (a clean
// SUCCESS carries no era-specific detail) the version read by Client.SystemInfo refines it;
// otherwise the broader EraBare or EraWebMessage is reported.
//
// # Decisions
//
// Every outcome of a call is exactly one of: a result (nil error), an *Error of Kind
// KindTransient (retry later, with backoff), an *Error of Kind KindPermanent (retrying the
// same request cannot succeed: dead-letter it), or the caller's own context error (the
// caller stopped; neither ack nor dead-letter). Callers test with errors.Is against
// ErrTransient, ErrPermanent, ErrUnauthorized, ErrTooLarge and ErrTimeout; they never
// match strings.
//
//	outcome                                                   decision
//	ImportSummary SUCCESS (200; any era)                      result
//	ImportSummary WARNING (HTTP 200 on ≤ 2.37 and 2.43+,      result: partial success; Rejected lists the
//	  HTTP 409 on 2.38–2.42)                                  rejected value indexes (§2.2, §12 "409 on
//	                                                          partial success")
//	ImportSummary ERROR (e.g. E7600 data set not found,       permanent, Error.Result holds the summary
//	  "Import process was aborted", malformed payload)        (§1.5, §2.4 C); every value was rejected
//	ImportSummary ERROR whose description names a database    transient: DHIS2 is busy (deadlock, lock
//	  lock or pool exhaustion                                 timeout, no free connection). Not in the
//	                                                          spec: a narrow, documented heuristic
//	409 whose body is not an ImportSummary                    permanent
//	2xx with a JSON body that is not an ImportSummary         permanent (BaseURL points at something else)
//	2xx with a non-JSON body (proxy page)                     transient: the outcome is unknown and
//	                                                          re-sending is harmless (upsert, §1.4)
//	400                                                       permanent
//	400 carrying an ApiToken error (2.43 malformed token,     permanent + ErrUnauthorized (§9.2)
//	  bad checksum: invalid_request)
//	401, 403 (JSON WebMessage or Tomcat HTML)                 permanent + ErrUnauthorized (§9)
//	3xx (redirects are never followed: a POST would turn      permanent, naming the Location; a redirect
//	  into a GET)                                             to a login page also ErrUnauthorized
//	404, 405, 410, 414, 415, 422, other 4xx                   permanent (415: §1.1 content types)
//	413                                                       permanent + ErrTooLarge: split the batch
//	408, 425, 429                                             transient, RetryAfter from Retry-After
//	500, 502, 503, 504, other 5xx (HTML proxy pages too)      transient, RetryAfter from Retry-After
//	501, 505                                                  permanent
//	connection refused/reset, EOF, DNS failure                transient
//	no complete response within Config.Timeout               transient + ErrTimeout (not
//	                                                          context.DeadlineExceeded)
//	TLS certificate rejected                                  permanent (an operator must act)
//	the caller's ctx canceled or past its deadline            ctx.Err() wrapped; neither kind
//	payload's WriteTo failed                                  permanent (an encoding bug)
//	invalid ImportOptions, content type DHIS2 refuses         permanent, before anything is sent
//	  (text/csv: §1.1, §12)
//	async: job never completes within Config.MaxJobWait       transient (Error.JobID set)
//	async: job reports level ERROR and leaves no summary      permanent (busy heuristic applies)
//	async: job completed but no summary appears               transient (DHIS2-7881, §3, §12)
//	async: 404 while polling (job lost: server restarted)     transient
//	async: a transient failure while polling                  tolerated twice in a row, then transient
//	response body above Config.MaxResponseBytes               permanent
//
// Retry-After is read as delay-seconds or an HTTP-date; Error.RetryAfter is zero when the
// header is absent, unparseable or in the past, and never above 24 hours.
//
// # Requests
//
// Query parameters are sent only when set (§1.2). attributeOptionComboIdScheme is never
// sent: no DHIS2 version binds it from the query string, and the attribute option combo is
// looked up with the category option combo scheme (§1.2, §12); a payload that needs a
// different AOC scheme must carry it itself (2.43+ JSON/XML, §1.3).
//
// A body up to MaxBufferedBody (512 KiB, a few thousand data values) is encoded whole into a
// pooled buffer and sent with a Content-Length; a larger one is streamed through a pipe
// (chunked) as the payload writes it, so memory stays bounded whatever the request size. A
// payload made with Bytes is sent as it is. With Config.Gzip the body is gzip-compressed and sent with Content-Encoding: gzip;
// DHIS2 detects gzip from the stream itself (§1.1), so the header is informational.
//
// Credentials never appear in errors, results or log records: the base URL may not carry
// user info, and the password, token and Authorization header value are redacted from any
// response text the client keeps.
//
// # Reading
//
// Beyond imports the client reads what scheduled exchanges and mapping need, with the same
// authentication, timeouts, redaction and decisions: analytics data value sets (§6) and
// stored values (§4.2), streamed into a transform.Sink through package dvs; metadata
// lists, whole (paging=false) or page by page; aggregate data exchanges (§10.1). It also
// registers complete data sets (§8, read like an import), starts analytics table runs,
// waits for any job through /api/system/tasks, and sends inbox messages.
//
//	outcome of a streamed read (analytics, export)            decision
//	200 JSON: streamed, not buffered (MaxResponseBytes does   result: the values reached the sink
//	  not apply; Timeout does)
//	the body breaks off or times out midway                   transient (the sink has some values)
//	the body is not a readable data value set                 permanent
//	the sink returns an error                                 that error, wrapped, unclassified
//	a request DHIS2 would refuse (no dx/pe/ou, E7117–E7119;   permanent, before anything is sent
//	  no data set/period/org unit, E2001/E2002/E2006)
//	409 with an error code (E7117, E2001...)                  permanent, Error.Code set
//
// A 409 when starting analytics tables is transient (another run holds the job type).
//
// # Liveness
//
// Client.Ping reads GET /api/system/ping ("pong", behind authentication), classified like
// an import: a cheap probe for a target whose circuit is open, which also tells whether the
// credentials still work (ErrUnauthorized).
package dhis2
