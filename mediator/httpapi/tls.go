package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertReloader serves the listener's certificate from cert_file and key_file and reads
// them again when either changes (a renewed certificate, a rotated key) without a restart.
// A pair that does not load is logged and the previous one kept, so that a half-written
// renewal never takes the listener down.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string // the files' modification times and sizes when cert was read
}

// NewCertReloader reads the pair once: a listener must not start without a certificate.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.filesStamp()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	return r, nil
}

// TLSConfig is the listener's TLS configuration: TLS 1.2 at least, the certificate from
// the reloader.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// GetCertificate returns the current certificate, reading the files again first when they
// changed. Two stat calls per handshake are cheap next to the handshake itself.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stamp, err := r.filesStamp(); err == nil && stamp != r.stamp {
		if err := r.load(stamp); err != nil {
			r.log.Warn("TLS certificate changed but does not load; serving the previous one", "err", err)
			r.stamp = stamp // do not retry on every handshake until the files change again
		} else {
			r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", r.cert.Leaf.NotAfter.Format(time.RFC3339))
		}
	}
	return r.cert, nil
}

func (r *CertReloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading http.tls cert_file %s and key_file %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

func (r *CertReloader) filesStamp() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("http.tls: %w", err)
		}
		stamp += fmt.Sprintf("%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}
