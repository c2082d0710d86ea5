import { ForemanClient } from "@foreman/client";
import { type ForemanEnv, readForemanEnv } from "./env.js";
import { FOREMAN_REACH_HINT, foremanAuthHint } from "./errors.js";
import type { Endpoint } from "./http.js";
import type { CliIo } from "./io.js";

/** The gateway, two ways: the typed jobs client, and an endpoint for the routes it does not cover. */
export interface Foreman {
  env: ForemanEnv;
  client: ForemanClient;
  endpoint: Endpoint;
}

export function connectForeman(io: CliIo): Foreman {
  const env = readForemanEnv(io.env);
  return {
    env,
    client: new ForemanClient({ baseUrl: env.baseUrl, token: env.token }),
    endpoint: {
      label: "foreman",
      baseUrl: env.baseUrl,
      token: env.token,
      reachHint: FOREMAN_REACH_HINT,
      authHint: foremanAuthHint(env.token !== undefined),
    },
  };
}
