// The sales projection's store, as its handler sees it.

/** The container token of the SalesRepository. */
export const SALES_REPOSITORY = Symbol.for('usecasecore.samples.SalesRepository');

/** What a product sold: how many of its orders were paid, and how many units they hold. */
export interface Sales {
  readonly productId: string;
  readonly paidOrders: number;
  readonly paidQty: number;
}

/** Paid orders counted per product. Every method joins the ambient transaction. */
export interface SalesRepository {
  /** Counts one more paid order of `qty` units of the product. */
  addPaidOrder(productId: string, qty: number): Promise<void>;
  /** The product's counts (zero for a product never sold). */
  of(productId: string): Promise<Sales>;
}
