// Package mtls makes and loads the certificates of a deployment's private
// CA: the co-signer's server certificate and the hot signer's and the
// watcher's client certificates, with which they authenticate each other
// (mutual TLS; each side accepts only peers the CA signed), and the
// core's server certificate for its API (its clients check it against
// the CA). Each server certificate names loopback and the host names it
// is given.
package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files in a TLS directory.
const (
	CAFile         = "ca.pem"
	ServerCertFile = "cosigner.pem"
	ServerKeyFile  = "cosigner.key"
	ClientCertFile = "signer.pem"
	ClientKeyFile  = "signer.key"
	// The watcher's client certificate: it may only tell the co-signer to
	// halt.
	WatcherCertFile = "watcher.pem"
	WatcherKeyFile  = "watcher.key"
	// The core's server certificate, for its API over HTTPS.
	CoreCertFile = "core.pem"
	CoreKeyFile  = "core.key"
)

// Hosts are the names (DNS names or IP addresses) the server
// certificates name besides loopback: how the other hosts reach the core
// and the co-signer.
type Hosts struct {
	Core, Cosigner []string
}

// Common names of the certificates, which the co-signer checks per route.
const (
	SignerName  = "kinko hot signer"
	WatcherName = "kinko watcher"
)

// Init writes a CA and the certificates into dir (0600 keys), naming
// loopback only. It refuses to overwrite.
func Init(dir string) error { return InitHosts(dir, Hosts{}) }

// InitHosts writes a CA and the certificates into dir (0600 keys): the
// core's and the co-signer's naming loopback and h's names. It refuses
// to overwrite, and to name a host twice or an empty one.
func InitHosts(dir string, h Hosts) error {
	coreIPs, coreNames, err := sans(h.Core)
	if err != nil {
		return err
	}
	csIPs, csNames, err := sans(h.Cosigner)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, CAFile)); err == nil {
		return errors.New("mtls: certificates exist; refusing to overwrite")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kinko signer CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string, ips []net.IP, names []string) error {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
			DNSNames: append([]string{"localhost"}, names...)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, certFile), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, keyFile), "EC PRIVATE KEY", kb, 0o600)
	}
	if err := issue(2, "kinko co-signer", x509.ExtKeyUsageServerAuth, ServerCertFile, ServerKeyFile, csIPs, csNames); err != nil {
		return err
	}
	if err := issue(3, SignerName, x509.ExtKeyUsageClientAuth, ClientCertFile, ClientKeyFile, nil, nil); err != nil {
		return err
	}
	if err := issue(4, WatcherName, x509.ExtKeyUsageClientAuth, WatcherCertFile, WatcherKeyFile, nil, nil); err != nil {
		return err
	}
	return issue(5, "kinko core", x509.ExtKeyUsageServerAuth, CoreCertFile, CoreKeyFile, coreIPs, coreNames)
}

// sans splits host names into IP addresses and DNS names.
func sans(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" || len(h) > 253 || seen[h] {
			return nil, nil, fmt.Errorf("mtls: host %q empty, too long or given twice", h)
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	return ips, names, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func pool(dir string) (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("mtls: %s holds no certificate", CAFile)
	}
	return p, nil
}

// Server returns the co-signer's TLS config: its certificate, and only
// client certificates the CA signed.
func Server(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		return nil, err
	}
	p, err := pool(dir)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

// Client returns the signer's TLS config: its certificate, and only a
// server certificate the CA signed.
func Client(dir string) (*tls.Config, error) { return client(dir, ClientCertFile, ClientKeyFile) }

// Watcher returns the watcher's TLS config, to reach the co-signer.
func Watcher(dir string) (*tls.Config, error) { return client(dir, WatcherCertFile, WatcherKeyFile) }

func client(dir, certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	p, err := pool(dir)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p, MinVersion: tls.VersionTLS13}, nil
}
