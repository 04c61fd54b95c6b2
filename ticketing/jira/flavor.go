package jira

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/ticketing"
)

// serverInfo is what GET /rest/api/2/serverInfo says of the instance (on
// Cloud and Data Center alike; anonymous access allowed).
type serverInfo struct {
	DeploymentType string `json:"deploymentType"` // "Cloud"; "Server" or "DataCenter" otherwise
	Version        string `json:"version"`
	BaseURL        string `json:"baseUrl"`
}

// setFlavor fixes the API of the flavor (cloud or not) and api_version.
// The caller has checked that they agree (flavorMismatch).
func (b *Backend) setFlavor(cloud bool) {
	v := b.o.APIVersion
	if v == 0 {
		v = 2
		if cloud {
			v = 3
		}
	}
	b.api, b.cloud = "/rest/api/"+strconv.Itoa(v), cloud
}

// apiPath is the API's root, /rest/api/3 or /rest/api/2. With no flavor
// configured, the first call asks Jira (GET /rest/api/2/serverInfo) and
// keeps the answer; an api_version that the instance does not have is then
// a final error, as config validate reports it when the flavor is given.
func (b *Backend) apiPath(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.api != "" {
		return b.api, nil
	}
	info, err := b.serverInfo(ctx)
	if err != nil {
		return "", err
	}
	cloud := strings.EqualFold(info.DeploymentType, "Cloud")
	if msg := flavorMismatch(cloud, b.o.APIVersion); msg != "" {
		return "", ticketing.Final("config", fmt.Errorf("jira backend %q: %s is %s (serverInfo deploymentType %q) but api_version is %d: %s",
			b.name, b.base, flavorName(cloud), info.DeploymentType, b.o.APIVersion, msg))
	}
	b.setFlavor(cloud)
	b.log.Info("jira flavor detected", "flavor", flavorName(cloud), "deployment_type", info.DeploymentType, "version", info.Version, "api", b.api)
	return b.api, nil
}

func (b *Backend) serverInfo(ctx context.Context) (serverInfo, error) {
	var info serverInfo
	err := b.client.Do(ctx, "ask the flavor of Jira (GET /rest/api/2/serverInfo)", rest.Request{Method: http.MethodGet, Path: "/rest/api/2/serverInfo"}, &info)
	return info, err
}

// ready makes sure the flavor is known.
func (b *Backend) ready(ctx context.Context) error {
	_, err := b.apiPath(ctx)
	return err
}

// isCloud: the instance is Jira Cloud. The flavor must be known (ready).
func (b *Backend) isCloud() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cloud
}

// v3: bodies are ADF (REST v3). The flavor must be known (ready).
func (b *Backend) v3() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.api == "/rest/api/3"
}

func flavorName(cloud bool) string {
	if cloud {
		return "Jira Cloud"
	}
	return "Jira Data Center"
}
