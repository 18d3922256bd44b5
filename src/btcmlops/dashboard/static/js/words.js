/* The words the page uses for the API's model types, shadow roles and baseline rules. */

export const ROLE_WORDS = { challenger: "challenger", previous_champion: "previous champion" };
export const RULE_WORDS = { majority: "majority class", last_hour: "last hour" };

export const MODEL_NAMES = {
  random_forest: "random forest",
  gradient_boosting: "gradient boosting",
  logistic_regression: "logistic regression",
};
