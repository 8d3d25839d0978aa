from dify_plugin import DifyPluginEnv, Plugin

# Our own deadlines (tool `timeout`, at most 590 s) stay under Dify's 600 s invocation limit;
# MAX_REQUEST_TIMEOUT only matters for remote/serverless runtimes, keep it above ours.
plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=620))

if __name__ == "__main__":
    plugin.run()
