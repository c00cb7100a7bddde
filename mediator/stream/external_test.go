package stream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// runExternal starts a nats-server on a loopback port, as an operator's cluster would run,
// with JetStream, a user and optionally TLS.
func runExternal(t *testing.T, tlsCfg *tls.Config) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Username: "tally", Password: "s3cret-pass",
	}
	if tlsCfg != nil {
		opts.TLS, opts.TLSConfig, opts.TLSVerify = true, tlsCfg, false
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// selfSigned makes a CA-less self-signed certificate for 127.0.0.1 and writes its PEM.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, ca
}

func TestExternalServerWithCredentialsAndTLS(t *testing.T) {
	tlsCfg, ca := selfSigned(t)
	cases := []struct {
		name    string
		tls     bool
		cfg     func(url string) Config
		wantErr string
	}{
		{"user and password", false, func(u string) Config { return Config{URL: u, User: "tally", Password: "s3cret-pass"} }, ""},
		{"wrong password", false, func(u string) Config { return Config{URL: u, User: "tally", Password: "nope"} }, "Authorization"},
		{"TLS with the CA bundle", true, func(u string) Config {
			return Config{URL: u, User: "tally", Password: "s3cret-pass", CAFile: ca}
		}, ""},
		{"TLS without the CA", true, func(u string) Config { return Config{URL: u, User: "tally", Password: "s3cret-pass"} },
			"certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var srvTLS *tls.Config
			if c.tls {
				srvTLS = tlsCfg
			}
			srv := runExternal(t, srvTLS)
			url := srv.ClientURL()
			if c.tls {
				url = strings.Replace(url, "nats://", "tls://", 1)
			}
			cfg := c.cfg(url)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
			if c.wantErr != "" {
				if err == nil {
					conn.Close(context.Background())
					t.Fatal("connected, want an error")
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret-pass") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if conn.Embedded() {
				t.Fatal("want an external connection")
			}
			if err := conn.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.JS.Stream(ctx, IngestStream); err != nil {
				t.Fatalf("streams not created on the external server: %v", err)
			}
		})
	}
}
