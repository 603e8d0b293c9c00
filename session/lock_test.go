package session

import (
	"os"
	"os/exec"
	"testing"

	"github.com/kubeplay/kubeplay/lock"
)

func TestProcessGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	self := lock.Holder{User: "ops", Host: "bastion", PID: os.Getpid()}
	gone := processGone(self)
	if !gone("ops@bastion", cmd.Process.Pid) {
		t.Error("an ended process on this machine is gone")
	}
	if gone("ops@bastion", os.Getpid()) {
		t.Error("this process is alive")
	}
	if gone("ops@laptop", cmd.Process.Pid) {
		t.Error("a process of another machine cannot be told gone")
	}
}
