// Types of bin/built.js (plain JavaScript: bin/sws.js runs it before tsx is registered).
export declare const MANIFEST: string;
export declare const MANIFEST_FORMAT: number;
export declare function fileHash(path: string | URL): string;
export declare function builtEntry(root: URL, name: string): { url: string | undefined; why: string };
