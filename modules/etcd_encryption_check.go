package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdEncryptionCheck reads the stored values of resources straight from
// etcd and checks how they are stored: the docs' `etcdctl get ... |
// hexdump` over every object, not one.
type EtcdEncryptionCheck struct{}

// EtcdEncryptionCheckParams are etcd-encryption-check's parameters.
type EtcdEncryptionCheckParams struct {
	EtcdClientParams `yaml:",inline"`
	Resources        []string `yaml:"resources" default:"[secrets]" doc:"resources as resource or resource.group; their keys are PREFIX/RESOURCE/"`
	Expect           string   `yaml:"expect" required:"true" doc:"encrypted (any k8s:enc: provider), plaintext, or a provider: aescbc, aesgcm, secretbox, kms"`
	Key              string   `yaml:"key" doc:"with a provider: the key (or KMS provider) name every value is stored with"`
	Prefix           string   `yaml:"prefix" default:"/registry" doc:"the API server's --etcd-prefix"`
}

var storageExpectations = []string{"encrypted", "plaintext", "aescbc", "aesgcm", "secretbox", "kms"}

// Validate checks the parameters.
func (p *EtcdEncryptionCheckParams) Validate() error {
	if len(p.Resources) == 0 {
		return errors.New("resources: at least one resource")
	}
	if !strings.HasPrefix(p.Prefix, "/") {
		return fmt.Errorf("prefix %q: an absolute key prefix", p.Prefix)
	}
	if !slices.Contains(storageExpectations, p.Expect) {
		return fmt.Errorf("expect %q: want one of %s", p.Expect, strings.Join(storageExpectations, ", "))
	}
	if p.Key != "" && (p.Expect == "encrypted" || p.Expect == "plaintext") {
		return errors.New("key goes with a provider (expect: aescbc, aesgcm, secretbox or kms)")
	}
	return p.EtcdClientParams.validate()
}

// ErrStoredWrong is returned when values are not stored as expected.
var ErrStoredWrong = errors.New("values not stored as expected")

func (EtcdEncryptionCheck) Name() string { return "etcd-encryption-check" }
func (EtcdEncryptionCheck) Doc() string {
	return "Read every stored value of the resources from etcd (through the host, paged) and check how each is stored: encrypted (a k8s:enc:PROVIDER:VERSION:KEY: prefix), by a given provider and key, or plaintext. Values stay in the runner's memory: register gives counts per storage (e.g. aescbc:v1:kubeplay-20261127-060000) and the keys of the first objects stored otherwise, never a value. Fails when any value is stored otherwise. Changes nothing."
}
func (EtcdEncryptionCheck) NewParams() Params { return &EtcdEncryptionCheckParams{} }

// storedAs classifies one stored value: PROVIDER:VERSION:KEY for an
// encrypted one, plaintext otherwise.
func storedAs(v []byte) string {
	rest, ok := bytes.CutPrefix(v, []byte("k8s:enc:"))
	if !ok {
		return "plaintext"
	}
	parts := bytes.SplitN(rest[:min(len(rest), 300)], []byte(":"), 4)
	if len(parts) < 4 {
		return "encrypted:unknown"
	}
	return string(parts[0]) + ":" + string(parts[1]) + ":" + string(parts[2])
}

// matches says whether a storage class is what p expects.
func (p *EtcdEncryptionCheckParams) matches(class string) bool {
	switch p.Expect {
	case "plaintext":
		return class == "plaintext"
	case "encrypted":
		return class != "plaintext"
	}
	parts := strings.SplitN(class, ":", 3)
	return parts[0] == p.Expect && (p.Key == "" || len(parts) == 3 && parts[2] == p.Key)
}

// Check is Run: the step only reads.
func (m EtcdEncryptionCheck) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.Run(ctx, t, p)
}

// Run reads and classifies every value.
func (EtcdEncryptionCheck) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	ep := p.(*EtcdEncryptionCheckParams)
	cli, err := ep.open(ctx, t)
	if err != nil {
		return Result{}, fmt.Errorf("etcd: %w", err)
	}
	defer cli.Close()
	counts := map[string]int{}
	var wrong []string
	total := 0
	for _, res := range ep.Resources {
		prefix := strings.TrimSuffix(ep.Prefix, "/") + "/" + strings.SplitN(res, ".", 2)[0] + "/"
		err := scanPrefix(ctx, cli, prefix, func(key, value []byte) {
			total++
			class := storedAs(value)
			counts[class]++
			if !ep.matches(class) && len(wrong) < 10 {
				wrong = append(wrong, string(key)+" ("+class+")")
			}
		})
		if err != nil {
			return Result{}, fmt.Errorf("read %s: %w", prefix, err)
		}
	}
	data := map[string]any{"total": total, "stored": counts, "wrong": wrong}
	classes := make([]string, 0, len(counts))
	for c, n := range counts {
		classes = append(classes, fmt.Sprintf("%d %s", n, c))
	}
	sort.Strings(classes)
	summary := fmt.Sprintf("%d value(s) of %s: %s", total, strings.Join(ep.Resources, ", "), strings.Join(classes, ", "))
	if len(wrong) > 0 {
		return Result{Data: data, Msg: summary}, fmt.Errorf("%w: want %s: %s; first: %s", ErrStoredWrong, ep.want(), summary, strings.Join(wrong, ", "))
	}
	return Result{Data: data, Msg: summary}, nil
}

func (p *EtcdEncryptionCheckParams) want() string {
	if p.Key != "" {
		return p.Expect + " with key " + p.Key
	}
	return p.Expect
}

// scanPrefix reads every key under prefix, a page at a time.
func scanPrefix(ctx context.Context, cli *clientv3.Client, prefix string, each func(key, value []byte)) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		r, err := cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(500), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			return err
		}
		for _, kv := range r.Kvs {
			each(kv.Key, kv.Value)
		}
		if !r.More || len(r.Kvs) == 0 {
			return nil
		}
		from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
}
