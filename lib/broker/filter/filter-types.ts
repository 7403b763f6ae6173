/**
 * The shape of a compiled filter, shared by the tag and SQL92 compilers and the selector.
 */

export type SelectorType = 'TAG' | 'SQL92';

export interface MessageFilter {
  readonly type: SelectorType;
  readonly expression: string;
  /** false only when a ConsumeQueue entry with this tag code surely cannot match. */
  matchesTagsCode(tagsCode: number): boolean;
  /** The exact check: the message's tags (undefined = no tag) and its user properties. */
  matches(tags: string | undefined, properties: Readonly<Record<string, string>>): boolean;
}
