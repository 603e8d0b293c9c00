package ssh

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/kevinburke/ssh_config"

	"github.com/kubeplay/kubeplay/inventory"
)

// hop is one SSH server on the way to a host (the last hop is the host).
type hop struct {
	name     string // for messages
	addr     string // host:port
	user     string
	identity string
}

// userConfig is the parsed ssh_config file, loaded once per connector.
type userConfig struct {
	path string
	once sync.Once
	cfg  *ssh_config.Config
	err  error
}

func (u *userConfig) load() (*ssh_config.Config, error) {
	u.once.Do(func() {
		if u.path == "none" {
			return
		}
		p := u.path
		if p == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return
			}
			p = filepath.Join(home, ".ssh", "config")
			if !fileExists(p) {
				return
			}
		}
		f, err := os.Open(expandHome(p))
		if err != nil {
			u.err = fmt.Errorf("ssh config: %w", err)
			return
		}
		defer f.Close()
		if u.cfg, err = ssh_config.Decode(f); err != nil {
			u.err = fmt.Errorf("ssh config %s: %w", p, err)
		}
	})
	return u.cfg, u.err
}

// resolve applies the ssh_config entry for alias to what the inventory did
// not set: HostName, User, Port and IdentityFile. It also returns the
// entry's ProxyJump.
func resolve(cfg *ssh_config.Config, alias, user string, userGiven bool, port int, portGiven bool, identity string) (hop, string, error) {
	get := func(key string) string {
		if cfg == nil {
			return ""
		}
		v, _ := cfg.Get(alias, key)
		return strings.TrimSpace(v)
	}
	host := alias
	if hn := get("HostName"); hn != "" {
		host = strings.ReplaceAll(hn, "%h", alias)
	}
	if !userGiven {
		if u := get("User"); u != "" {
			user = u
		}
	}
	if !portGiven {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return hop{}, "", fmt.Errorf("ssh config: host %s: Port %q", alias, p)
			}
			port = n
		}
	}
	if port == 0 {
		port = 22
	}
	if identity == "" && cfg != nil {
		if ids, _ := cfg.GetAll(alias, "IdentityFile"); len(ids) > 0 {
			identity = ids[0]
		}
	}
	return hop{name: alias, addr: net.JoinHostPort(host, strconv.Itoa(port)), user: user, identity: identity}, get("ProxyJump"), nil
}

// route is the list of hops to h: its jump hosts (the inventory's
// proxy_jump or bastion, else the ssh_config ProxyJump), then h itself.
func (c *Connector) route(h *inventory.Host) ([]hop, error) {
	cfg, err := c.sshConfig.load()
	if err != nil {
		return nil, err
	}
	target, pj, err := resolve(cfg, h.Address, h.User, h.UserGiven, h.Port, h.PortGiven, h.IdentityFile)
	if err != nil {
		return nil, err
	}
	target.name = h.Name
	jumps := h.Jumps
	if jumps == nil && pj != "" {
		if jumps, err = inventory.ParseJumps(pj); err != nil {
			return nil, fmt.Errorf("ssh config: host %s: %w", h.Address, err)
		}
	}
	var out []hop
	for _, j := range jumps {
		// a jump host's user defaults to the host's login user
		user, given := j.User, j.User != ""
		if !given {
			user = target.user
		}
		hp, _, err := resolve(cfg, j.Address, user, given, j.Port, j.Port != 0, j.IdentityFile)
		if err != nil {
			return nil, err
		}
		if hp.identity == "" {
			hp.identity = target.identity
		}
		out = append(out, hp)
	}
	return append(out, target), nil
}
