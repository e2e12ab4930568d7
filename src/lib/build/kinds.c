/*
 * The kinds: one row per ecosystem. Adding a kind is adding a row.
 *
 * Every script runs as root under /bin/sh -c with `set -e`, the requirement
 * file already at /tmp/<file>. /tmp is a tmpfs in the sandbox, so download
 * caches pointed there never reach the layer. Kinds that need a project
 * directory use /opt/hoist/<kind>; the new image's Env points the runtime
 * at it. PYTHONDONTWRITEBYTECODE keeps the bytecode pip's own imports would
 * write out of the layer (pip still compiles what it installs).
 */
#include <string.h>

#include "hoist/build.h"

static const hoist_mirror_info mirrors[HOIST_MIRROR_COUNT] = {
    [HOIST_MIRROR_PIP] = {"pip-index-url", "HOIST_PIP_INDEX_URL", "PIP_INDEX_URL", "URL", true},
    [HOIST_MIRROR_NPM] = {"npm-registry", "HOIST_NPM_REGISTRY", "npm_config_registry", "URL", true},
    [HOIST_MIRROR_GO] = {"goproxy", "HOIST_GOPROXY", "GOPROXY", "URL", true},
    [HOIST_MIRROR_MAVEN] = {"maven-mirror", "HOIST_MAVEN_MIRROR", "HOIST_MAVEN_MIRROR", "URL",
                            true},
    [HOIST_MIRROR_COMPOSER] = {"composer-repo", "HOIST_COMPOSER_REPO", "HOIST_COMPOSER_REPO", "URL",
                               true},
    [HOIST_MIRROR_GEM] = {"gem-source", "HOIST_GEM_SOURCE", "HOIST_GEM_SOURCE", "URL", true},
    [HOIST_MIRROR_NUGET] = {"nuget-source", "HOIST_NUGET_SOURCE", "HOIST_NUGET_SOURCE", "URL",
                            true},
    [HOIST_MIRROR_GONOSUMDB] = {"gonosumdb", "HOIST_GONOSUMDB", "GONOSUMDB", "PATTERNS", false},
};

#define ENV(...)                                                                                   \
  (const char *const[]) { __VA_ARGS__, NULL }

static const hoist_build_kind kinds[] = {
    {
        .name = "python",
        .file = "requirements.txt",
        .version = 1,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_PIP),
        .script = "py=$(command -v python3 || command -v python)\n"
                  "\"$py\" -m pip install -r /tmp/requirements.txt\n",
        .env = ENV("PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1",
                   "PIP_ROOT_USER_ACTION=ignore", "PIP_BREAK_SYSTEM_PACKAGES=1", "PIP_NO_INPUT=1"),
        .config = NULL,
    },
    {
        .name = "nodejs",
        .file = "package.json",
        .version = 1,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_NPM),
        .script = "mkdir -p /opt/hoist/nodejs\n"
                  "cp /tmp/package.json /opt/hoist/nodejs/package.json\n"
                  "cd /opt/hoist/nodejs\n"
                  "npm install --omit=dev --no-audit --no-fund\n",
        .env = ENV("npm_config_cache=/tmp/.npm", "npm_config_update_notifier=false",
                   "npm_config_loglevel=warn"),
        .config = ENV("NODE_PATH=/opt/hoist/nodejs/node_modules"),
    },
    /* `go mod download all`: every module of the build list, so go.sum is
     * complete (without "all", Go 1.17+ fetches only go.mod's direct lines
     * and records only their go.mod hashes). The module cache, download
     * cache included, is the dependency store a later `go build` reads;
     * GOCACHE (compiled packages) stays in /tmp. */
    {
        .name = "go",
        .file = "go.mod",
        .version = 2,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_GO) | HOIST_MIRROR_BIT(HOIST_MIRROR_GONOSUMDB),
        .script = "mkdir -p /opt/hoist/go\n"
                  "cp /tmp/go.mod /opt/hoist/go/go.mod\n"
                  "cd /opt/hoist/go\n"
                  "go mod download all\n",
        .env = ENV("GOMODCACHE=/opt/hoist/go/mod", "GOCACHE=/tmp/.go-build", "GOFLAGS=-modcacherw",
                   "GOTOOLCHAIN=local"),
        .config = ENV("GOMODCACHE=/opt/hoist/go/mod"),
    },
    /* Maven resolves into a local repository in /tmp; only the runtime
     * dependencies are copied out, as jars on the new image's CLASSPATH. */
    {
        .name = "java",
        .file = "pom.xml",
        .version = 2,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_MAVEN),
        .script = "mkdir -p /opt/hoist/java\n"
                  "cp /tmp/pom.xml /opt/hoist/java/pom.xml\n"
                  "cd /opt/hoist/java\n"
                  "set -- -B -Dstyle.color=never -Dmaven.repo.local=/tmp/.m2\n"
                  "if [ -n \"$HOIST_MAVEN_MIRROR\" ]; then\n"
                  "  printf '<settings><mirrors><mirror><id>hoist</id><mirrorOf>*</mirrorOf>"
                  "<url>%s</url></mirror></mirrors></settings>\\n' \"$HOIST_MAVEN_MIRROR\" "
                  "> /tmp/.settings.xml\n"
                  "  set -- \"$@\" -s /tmp/.settings.xml\n"
                  "fi\n"
                  "mvn \"$@\" dependency:copy-dependencies -DoutputDirectory=/opt/hoist/java/lib "
                  "-DincludeScope=runtime\n",
        .env = ENV("MAVEN_OPTS=-Djava.io.tmpdir=/tmp"),
        .config = ENV("CLASSPATH=/opt/hoist/java/lib/*"),
    },
    /* Composer refuses plain-http repositories unless secure-http is off:
     * a loopback or in-house mirror is often http. The lock file stays
     * beside composer.json; the download cache stays in /tmp. */
    {
        .name = "php",
        .file = "composer.json",
        .version = 2,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_COMPOSER),
        .script = "mkdir -p /opt/hoist/php\n"
                  "cp /tmp/composer.json /opt/hoist/php/composer.json\n"
                  "cd /opt/hoist/php\n"
                  "if [ -n \"$HOIST_COMPOSER_REPO\" ]; then\n"
                  "  composer config -g repos.packagist composer \"$HOIST_COMPOSER_REPO\"\n"
                  "  case $HOIST_COMPOSER_REPO in\n"
                  "  http:*) composer config -g secure-http false ;;\n"
                  "  esac\n"
                  "fi\n"
                  "composer install --no-dev --no-interaction --no-progress\n",
        .env = ENV("COMPOSER_HOME=/tmp/.composer", "COMPOSER_CACHE_DIR=/tmp/.composer/cache",
                   "COMPOSER_ALLOW_SUPERUSER=1", "COMPOSER_VENDOR_DIR=/opt/hoist/php/vendor"),
        .config = ENV("COMPOSER_VENDOR_DIR=/opt/hoist/php/vendor"),
    },
    /* Gems go under /opt/hoist/ruby/vendor/bundle (BUNDLE_PATH), not into the
     * system's gem directory; the .gem files RubyGems keeps there are a
     * download cache and are removed. Bundler's settings stay in /tmp. */
    {
        .name = "ruby",
        .file = "Gemfile",
        .version = 2,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_GEM),
        .script = "mkdir -p /opt/hoist/ruby\n"
                  "cp /tmp/Gemfile /opt/hoist/ruby/Gemfile\n"
                  "cd /opt/hoist/ruby\n"
                  "if [ -n \"$HOIST_GEM_SOURCE\" ]; then\n"
                  "  bundle config set --global mirror.https://rubygems.org \"$HOIST_GEM_SOURCE\"\n"
                  "fi\n"
                  "bundle install\n"
                  "rm -rf /opt/hoist/ruby/vendor/bundle/ruby/*/cache\n",
        .env = ENV("BUNDLE_GEMFILE=/opt/hoist/ruby/Gemfile",
                   "BUNDLE_PATH=/opt/hoist/ruby/vendor/bundle", "BUNDLE_APP_CONFIG=/tmp/.bundle",
                   "BUNDLE_USER_HOME=/tmp/.bundle-home", "BUNDLE_SILENCE_ROOT_WARNING=1"),
        .config = ENV("BUNDLE_GEMFILE=/opt/hoist/ruby/Gemfile",
                      "BUNDLE_PATH=/opt/hoist/ruby/vendor/bundle"),
    },
    /* No .NET SDK is packaged in Debian: this recipe is tested with a
     * stand-in tool only (README "Kinds"). */
    {
        .name = "dotnet",
        .file = "project.json",
        .version = 1,
        .mirrors = HOIST_MIRROR_BIT(HOIST_MIRROR_NUGET),
        .script = "mkdir -p /opt/hoist/dotnet\n"
                  "cp /tmp/project.json /opt/hoist/dotnet/project.json\n"
                  "cd /opt/hoist/dotnet\n"
                  "if [ -n \"$HOIST_NUGET_SOURCE\" ]; then\n"
                  "  dotnet restore --source \"$HOIST_NUGET_SOURCE\"\n"
                  "else\n"
                  "  dotnet restore\n"
                  "fi\n",
        .env = ENV("NUGET_PACKAGES=/opt/hoist/dotnet/packages", "DOTNET_CLI_HOME=/tmp",
                   "DOTNET_CLI_TELEMETRY_OPTOUT=1", "DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1",
                   "DOTNET_NOLOGO=1"),
        .config = ENV("NUGET_PACKAGES=/opt/hoist/dotnet/packages"),
    },
};

const hoist_mirror_info *hoist_build_mirror_info(hoist_mirror m) {
  return (unsigned)m < HOIST_MIRROR_COUNT ? &mirrors[m] : NULL;
}

const hoist_build_kind *hoist_build_kind_find(const char *name) {
  for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kinds[i].name, name) == 0)
      return &kinds[i];
  return NULL;
}

const hoist_build_kind *hoist_build_kinds(size_t *n) {
  *n = sizeof kinds / sizeof kinds[0];
  return kinds;
}
