import type { FaultRequest, FaultScope, FaultSnapshot } from "./interfaces.js";

/** A fault armed for some requests: the next `remaining`, those before `until`, or all. */
interface Rule<T> {
  params: T;
  remaining: number | undefined;
  until: number | undefined;
  pathPrefix: string | undefined;
}

export class FaultRequestError extends Error {}

function makeRule<T>(scope: FaultScope, params: T, now: number): Rule<T> {
  return {
    params,
    remaining: scope.count,
    until: scope.forMs === undefined ? undefined : now + scope.forMs,
    pathPrefix: scope.pathPrefix,
  };
}

/**
 * The request-level faults (hang, die mid-stream, slow first token). Refusing connections is a
 * listener-level fault and lives in the server. Each kind holds one rule; arming it again
 * replaces the previous one. Windows use real time: they model the network, not the model clock.
 */
export class FaultPlan {
  private hangRule: Rule<null> | undefined;
  private dieRule: Rule<{ afterChunks: number }> | undefined;
  private slowRule: Rule<{ ms: number }> | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  setHang(scope: FaultScope = {}): void {
    this.hangRule = makeRule(scope, null, this.now());
  }

  setDieMidStream(options: FaultScope & { afterChunks: number }): void {
    this.dieRule = makeRule(options, { afterChunks: options.afterChunks }, this.now());
  }

  setSlowFirstToken(options: FaultScope & { ms: number }): void {
    this.slowRule = makeRule(options, { ms: options.ms }, this.now());
  }

  clear(): void {
    this.hangRule = undefined;
    this.dieRule = undefined;
    this.slowRule = undefined;
  }

  /** Should this request hang? Consumes one use of the rule when it does. */
  takeHang(path: string): boolean {
    const rule = this.take(this.hangRule, path);
    if (rule === "expired") this.hangRule = undefined;
    return rule === "hit";
  }

  /** After how many chunks this streamed response should die, if it should. */
  takeDieMidStream(path: string): number | undefined {
    const rule = this.dieRule;
    const result = this.take(rule, path);
    if (result === "expired") this.dieRule = undefined;
    return result === "hit" && rule ? rule.params.afterChunks : undefined;
  }

  /** Extra delay before the first token of this generation (0 for none). */
  takeSlowFirstToken(path: string): number {
    const rule = this.slowRule;
    const result = this.take(rule, path);
    if (result === "expired") this.slowRule = undefined;
    return result === "hit" && rule ? rule.params.ms : 0;
  }

  snapshot(): Omit<FaultSnapshot, "refusingUntil" | "hungRequests"> {
    const scope = (rule: Rule<unknown>): FaultScope & { expiresAt?: string } => ({
      ...(rule.remaining === undefined ? {} : { count: rule.remaining }),
      ...(rule.pathPrefix === undefined ? {} : { pathPrefix: rule.pathPrefix }),
      ...(rule.until === undefined ? {} : { expiresAt: new Date(rule.until).toISOString() }),
    });
    return {
      hang: this.live(this.hangRule) ? scope(this.hangRule as Rule<null>) : null,
      dieMidStream: this.live(this.dieRule)
        ? {
            ...scope(this.dieRule as Rule<unknown>),
            afterChunks: (this.dieRule as Rule<{ afterChunks: number }>).params.afterChunks,
          }
        : null,
      slowFirstToken: this.live(this.slowRule)
        ? { ...scope(this.slowRule as Rule<unknown>), ms: (this.slowRule as Rule<{ ms: number }>).params.ms }
        : null,
    };
  }

  private live(rule: Rule<unknown> | undefined): boolean {
    if (!rule) return false;
    if (rule.until !== undefined && this.now() > rule.until) return false;
    return rule.remaining === undefined || rule.remaining > 0;
  }

  private take(rule: Rule<unknown> | undefined, path: string): "hit" | "miss" | "expired" {
    if (!rule) return "miss";
    if (rule.until !== undefined && this.now() > rule.until) return "expired";
    if (rule.pathPrefix !== undefined && !path.startsWith(rule.pathPrefix)) return "miss";
    if (rule.remaining !== undefined) {
      if (rule.remaining <= 0) return "expired";
      rule.remaining--;
    }
    return "hit";
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readCount(value: unknown, field: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new FaultRequestError(`${field} must be an integer >= ${min}`);
  }
  return value;
}

function readScope(value: Record<string, unknown>, name: string): FaultScope {
  const scope: FaultScope = {};
  const count = readCount(value.count, `${name}.count`, 1);
  if (count !== undefined) scope.count = count;
  const forMs = readCount(value.forMs, `${name}.forMs`, 0);
  if (forMs !== undefined) scope.forMs = forMs;
  if (value.pathPrefix !== undefined) {
    if (typeof value.pathPrefix !== "string" || !value.pathPrefix.startsWith("/")) {
      throw new FaultRequestError(`${name}.pathPrefix must be a path starting with "/"`);
    }
    scope.pathPrefix = value.pathPrefix;
  }
  return scope;
}

const KNOWN_KEYS = new Set(["refuse", "hang", "dieMidStream", "slowFirstToken", "clear"]);

/** Validates a POST /_sim/faults body; throws FaultRequestError naming the bad field. */
export function parseFaultRequest(body: unknown): FaultRequest {
  if (!isRecord(body)) throw new FaultRequestError("the body must be a JSON object");
  for (const key of Object.keys(body)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new FaultRequestError(`unknown fault "${key}"; use refuse, hang, dieMidStream, slowFirstToken or clear`);
    }
  }
  const request: FaultRequest = {};
  if (body.clear !== undefined) {
    if (typeof body.clear !== "boolean") throw new FaultRequestError("clear must be a boolean");
    request.clear = body.clear;
  }
  if (body.refuse !== undefined) {
    if (!isRecord(body.refuse)) throw new FaultRequestError('refuse must be an object like {"ms": 2000}');
    const ms = readCount(body.refuse.ms, "refuse.ms", 1);
    if (ms === undefined) throw new FaultRequestError("refuse.ms is required");
    request.refuse = { ms };
  }
  if (body.hang !== undefined) {
    if (!isRecord(body.hang)) throw new FaultRequestError('hang must be an object like {"count": 1}');
    request.hang = readScope(body.hang, "hang");
  }
  if (body.dieMidStream !== undefined) {
    if (!isRecord(body.dieMidStream)) {
      throw new FaultRequestError('dieMidStream must be an object like {"afterChunks": 3}');
    }
    const afterChunks = readCount(body.dieMidStream.afterChunks, "dieMidStream.afterChunks", 0);
    if (afterChunks === undefined) throw new FaultRequestError("dieMidStream.afterChunks is required");
    request.dieMidStream = { ...readScope(body.dieMidStream, "dieMidStream"), afterChunks };
  }
  if (body.slowFirstToken !== undefined) {
    if (!isRecord(body.slowFirstToken)) {
      throw new FaultRequestError('slowFirstToken must be an object like {"ms": 1500}');
    }
    const ms = readCount(body.slowFirstToken.ms, "slowFirstToken.ms", 0);
    if (ms === undefined) throw new FaultRequestError("slowFirstToken.ms is required");
    request.slowFirstToken = { ...readScope(body.slowFirstToken, "slowFirstToken"), ms };
  }
  return request;
}
