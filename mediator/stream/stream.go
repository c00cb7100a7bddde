package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream, subject and bucket names.
const (
	IngestStream  = "TALLY_INGEST"
	DeliverStream = "TALLY_DELIVER"
	DLQStream     = "TALLY_DLQ"
	IngestPrefix  = "tally.ingest."
	DeliverPrefix = "tally.deliver."
	DLQPrefix     = "tally.dlq."
	TxBucket      = "tally_tx"
	StateBucket   = "tally_state"
	// OpenHIMStream is the outbox of outcomes to record in an OpenHIM core's transactions,
	// one message per core transaction on OpenHIMPrefix + "outcome".
	OpenHIMStream = "TALLY_OPENHIM"
	OpenHIMPrefix = "tally.openhim."
	// TxStream and TxSubjectPrefix name the stream JetStream keeps the tally_tx bucket in,
	// and the subject of each key (TxSubjectPrefix + key), for a consumer that follows the
	// transaction log's writes durably.
	TxStream        = "KV_" + TxBucket
	TxSubjectPrefix = "$KV." + TxBucket + "."
)

// Config says where JetStream is. An empty URL starts an embedded server storing in StoreDir.
type Config struct {
	URL             string
	StoreDir        string
	Replicas        int
	CredentialsFile string
	User, Password  string
	Token           string
	CAFile          string
	CertFile        string
	KeyFile         string
	InsecureTLS     bool
	// DuplicateWindow is how long message ids are remembered for deduplication.
	DuplicateWindow time.Duration
	// MaxAge bounds how long unconsumed messages stay in the ingest and deliver streams.
	MaxAge time.Duration
	// TxRetention is how long transaction records are kept; 0 keeps them.
	TxRetention time.Duration
	// MaxPending bounds asynchronous publishes awaiting acknowledgement.
	MaxPending int
	// ClientName identifies this process to the server.
	ClientName string
}

// Conn is an open JetStream with Tally's streams and buckets in place.
type Conn struct {
	NC    *nats.Conn
	JS    jetstream.JetStream
	Tx    jetstream.KeyValue
	State jetstream.KeyValue
	srv   *server.Server
	log   *slog.Logger
	// closed is closed once the connection is closed (a drain finished).
	closed chan struct{}
}

// Open starts or connects to JetStream and ensures the streams and buckets exist with the
// configured replica count. Calling it again against the same store is harmless.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Conn, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = 2 * time.Hour
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 256
	}
	c := &Conn{log: log, closed: make(chan struct{})}
	var closeOnce sync.Once
	opts := []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { closeOnce.Do(func() { close(c.closed) }) }),
		nats.Name(cfg.ClientName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg.StoreDir)
		if err != nil {
			return nil, err
		}
		c.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		auth, err := clientAuth(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.shutdownServer()
		return nil, fmt.Errorf("connecting to NATS %s: %w", redactURL(url), err)
	}
	c.NC = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxPending))
	if err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	c.JS = js
	if err := c.ensure(ctx, cfg); err != nil {
		c.Close(ctx)
		return nil, err
	}
	return c, nil
}

func startEmbedded(storeDir string) (*server.Server, error) {
	if storeDir == "" {
		return nil, errors.New("embedded NATS needs a store directory")
	}
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating NATS store %s: %w", storeDir, err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "tally-embedded",
		JetStream:  true,
		StoreDir:   storeDir,
		DontListen: true, // reached in-process only; nothing else needs a port
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready within 30s")
	}
	return srv, nil
}

func clientAuth(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.InsecureTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureTLS} //nolint:gosec // explicit opt-in
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading NATS CA bundle: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("NATS CA bundle %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("loading NATS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

func (c *Conn) ensure(ctx context.Context, cfg Config) error {
	streams := []jetstream.StreamConfig{
		{Name: IngestStream, Subjects: []string{IngestPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
			Description: "Canonical batches as accepted from clients, before mapping"},
		{Name: DeliverStream, Subjects: []string{DeliverPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
			Description: "Mapped batches waiting for delivery, one subject per target"},
		{Name: DLQStream, Subjects: []string{DLQPrefix + ">"}, Retention: jetstream.LimitsPolicy,
			Description: "Dead letters: values a target refused or that ran out of attempts"},
		{Name: OpenHIMStream, Subjects: []string{OpenHIMPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
			Description: "Transaction outcomes waiting to be recorded in the OpenHIM core"},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = cfg.Replicas
		sc.Duplicates = cfg.DuplicateWindow
		if sc.Name != DLQStream {
			sc.MaxAge = cfg.MaxAge
		}
		if _, err := c.JS.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", sc.Name, err)
		}
	}
	var err error
	c.Tx, err = c.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: TxBucket, Description: "Transaction log", History: 1, TTL: cfg.TxRetention,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating or updating bucket %s: %w", TxBucket, err)
	}
	c.State, err = c.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: StateBucket, Description: "Exchange state, target metadata, last delivered sets", History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating or updating bucket %s: %w", StateBucket, err)
	}
	return nil
}

// Embedded reports whether this process runs the JetStream server itself.
func (c *Conn) Embedded() bool { return c.srv != nil }

// Ready reports whether the connection is up and JetStream answers.
func (c *Conn) Ready(ctx context.Context) error {
	if c.NC == nil || !c.NC.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream not answering: %w", err)
	}
	return nil
}

// Close drains the connection — subscriptions stop, acknowledgements and publishes in flight
// are flushed — waiting for the drain until ctx ends, then closes it and stops an embedded
// server, which flushes its store.
func (c *Conn) Close(ctx context.Context) {
	if c.NC != nil {
		if err := c.NC.Drain(); err == nil {
			select {
			case <-c.closed:
			case <-ctx.Done():
				c.log.Warn("draining the NATS connection did not finish in time; closing it")
			}
		}
		c.NC.Close()
	}
	c.shutdownServer()
}

func (c *Conn) shutdownServer() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}

// redactURL hides passwords in a NATS URL list ("nats://u:p@h1:4222,nats://h2:4222"), so that
// a password in a URL never reaches a log or an error.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
