// Package openhim makes Tally an OpenHIM mediator: it registers Tally with an OpenHIM core,
// keeps it alive with heartbeats, receives console config, answers in the core's
// `application/json+openhim` envelope and reports asynchronous outcomes to the core's
// transaction log.
//
// The pieces are independent of the rest of Tally: Config (the `openhim:` YAML section),
// BuildRegistration / RegistrationJSON (the POST /mediators body), Client (the core API),
// Mediator (the background register/heartbeat loop) and Envelope (the response body).
//
// Configuration example (every key but url, username and password has a default):
//
//	openhim:
//	  enabled: true
//	  url: https://openhim-core:8080        # core API, not the router
//	  username: root@openhim.org            # the user's email; group "admin" up to core 8.5.0
//	  password: ${OPENHIM_PASSWORD}
//	  auth: basic                           # or "token" for cores up to 7.0
//	  ca_file: /etc/tally/openhim-ca.pem    # or, for tests only, insecure_skip_verify: true
//	  timeout: 10s
//	  heartbeat_interval: 10s
//	  config_poll_interval: 60s             # ask for the full config every 6th beat
//	  urn: urn:mediator:tally
//	  name: Tally
//	  route:                                # how the core reaches Tally
//	    host: tally
//	    port: 8080
//	    secured: false
//	    path_prefix: ""
//	  allow: [tally]                        # client ids or roles admitted to the channels
//
// Wiring, in short: build a Mediator with New and call Run with a callback that applies
// ParseOverrides; serve Tally's endpoints and, when TransactionID(r) is non-empty, answer
// with an Envelope; after an asynchronous delivery call Client.ReportOutcome, which waits
// for the core's own write of that envelope, records the outcome and confirms it by reading
// the transaction back (GetTransaction). Build orchestrations of outbound calls with
// NewRequest (from the URL called) and NewOrchestration. The channels appear in the console
// under the mediator and must be installed there (the core does not create them, nor update
// installed ones on a version bump).
package openhim
