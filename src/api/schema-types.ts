/**
 * A typed subset of the OpenAPI v3 structural schema Kubernetes accepts for CRDs,
 * plus FromSchema: the TypeScript type a schema describes. The CRD in crds/ and the
 * types the code uses are both derived from one schema object, so they cannot drift.
 */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface JsonSchema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly items?: JsonSchema;
  readonly additionalProperties?: JsonSchema;
  readonly enum?: readonly string[];
  readonly pattern?: string;
  readonly format?: string;
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly maxProperties?: number;
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
}

type Prettify<T> = { [K in keyof T]: T[K] } & {};

type RequiredKeys<S, WithDefaults extends boolean> =
  | (S extends { required: readonly (infer R)[] } ? R : never)
  | (WithDefaults extends true
      ? { [K in keyof PropsOf<S>]: PropsOf<S>[K] extends { default: unknown } ? K : never }[keyof PropsOf<S>]
      : never);

type PropsOf<S> = S extends { properties: infer P } ? P : never;

type ObjectFrom<S, D extends boolean> = Prettify<
  { -readonly [K in keyof PropsOf<S> & RequiredKeys<S, D>]: FromSchemaImpl<PropsOf<S>[K], D> } & {
    -readonly [K in Exclude<keyof PropsOf<S>, RequiredKeys<S, D>>]?: FromSchemaImpl<PropsOf<S>[K], D>;
  }
>;

type FromSchemaImpl<S, D extends boolean> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'integer' | 'number' }
      ? number
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'array'; items: infer I }
          ? FromSchemaImpl<I, D>[]
          : S extends { type: 'object'; properties: object }
            ? ObjectFrom<S, D>
            : S extends { type: 'object'; additionalProperties: infer A }
              ? Record<string, FromSchemaImpl<A, D>>
              : unknown;

/** The type of an object as a user writes it: fields with a default are optional. */
export type FromSchema<S> = FromSchemaImpl<S, false>;
/** The type after the apiserver (or applyDefaults) filled in every default. */
export type FromSchemaDefaulted<S> = FromSchemaImpl<S, true>;
