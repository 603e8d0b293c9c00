package ssh_test

import (
	"encoding/pem"
	"os/exec"
)

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func encodePEM(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
